// Register-blocked AVX2 kernels for conv2d_direct.h. correlate: a tile of KB output channels x V
// vectors of 8 positions stays in registers while (c, r, s) runs: V loads + KB broadcasts feed
// KB * V FMAs. weight_grad: KB channels x NI (c, r, s) taps accumulate along p, then one
// horizontal sum each.
#include "kernels/cpu/conv2d_direct.h"

#include <algorithm>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define GRADLENS_CONV_DIRECT 1
#else
#define GRADLENS_CONV_DIRECT 0
#endif

namespace gradlens::cpu::direct {

constexpr i64 kMaxTile = 64;  // widest correlate tile: 8 vectors of 8
constexpr int kMaxChannelBlock = 6;

i64 input_tail(i64 s) { return kMaxTile + s + 8; }

i64 output_stride(i64 count) { return (count + 7) / 8 * 8 + kMaxTile; }

void make_offsets(i64 c, i64 r, i64 s, i64 plane, i64 wp, i64* offsets) {
  for (i64 ci = 0; ci < c; ++ci) {
    for (i64 ri = 0; ri < r; ++ri) {
      for (i64 si = 0; si < s; ++si) *offsets++ = ci * plane + ri * wp + si;
    }
  }
}

void pack_weights(const float* w, i64 k, i64 crs, float* packed) {
  for (i64 k0 = 0; k0 < k; k0 += kMaxChannelBlock) {
    const i64 kb = std::min<i64>(kMaxChannelBlock, k - k0);
    float* block = packed + k0 * crs;
    for (i64 i = 0; i < crs; ++i) {
      for (i64 j = 0; j < kb; ++j) block[i * kb + j] = w[(k0 + j) * crs + i];
    }
  }
}

#if GRADLENS_CONV_DIRECT

bool available() { return true; }

namespace {

template <int KB, int V>
void correlate_block(const float* in,
                     const i64* offsets,
                     i64 crs,
                     const float* w,
                     const float* bias,
                     i64 count,
                     i64 ld,
                     float* out) {
  for (i64 p0 = 0; p0 < count; p0 += 8 * V) {
    __m256 acc[KB][V];
    for (int kb = 0; kb < KB; ++kb) {
      const __m256 init = bias != nullptr ? _mm256_set1_ps(bias[kb]) : _mm256_setzero_ps();
      for (int v = 0; v < V; ++v) acc[kb][v] = init;
    }
    const float* base = in + p0;
    const float* wi = w;
    for (i64 i = 0; i < crs; ++i, wi += KB) {
      const float* src = base + offsets[i];
      __m256 x[V];
      for (int v = 0; v < V; ++v) x[v] = _mm256_loadu_ps(src + 8 * v);
      for (int kb = 0; kb < KB; ++kb) {
        const __m256 wv = _mm256_broadcast_ss(wi + kb);
        for (int v = 0; v < V; ++v) acc[kb][v] = _mm256_fmadd_ps(wv, x[v], acc[kb][v]);
      }
    }
    for (int kb = 0; kb < KB; ++kb) {
      for (int v = 0; v < V; ++v) _mm256_storeu_ps(out + kb * ld + p0 + 8 * v, acc[kb][v]);
    }
  }
}

inline float hsum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

template <int KB, int NI>
void weight_grad_block(
    const float* dyw, i64 ld, const float* in, const i64* offsets, i64 count, float* dw, i64 crs) {
  __m256 acc[KB][NI];
  for (int kb = 0; kb < KB; ++kb) {
    for (int i = 0; i < NI; ++i) acc[kb][i] = _mm256_setzero_ps();
  }
  const float* src[NI];
  for (int i = 0; i < NI; ++i) src[i] = in + offsets[i];
  for (i64 p = 0; p < count; p += 8) {
    __m256 d[KB];
    for (int kb = 0; kb < KB; ++kb) d[kb] = _mm256_loadu_ps(dyw + kb * ld + p);
    for (int i = 0; i < NI; ++i) {
      const __m256 x = _mm256_loadu_ps(src[i] + p);
      for (int kb = 0; kb < KB; ++kb) acc[kb][i] = _mm256_fmadd_ps(d[kb], x, acc[kb][i]);
    }
  }
  for (int kb = 0; kb < KB; ++kb) {
    int i = 0;
    for (; i + 4 <= NI; i += 4) {  // four horizontal sums at once, added to 4 adjacent taps
      const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(acc[kb][i], acc[kb][i + 1]),
                                      _mm256_hadd_ps(acc[kb][i + 2], acc[kb][i + 3]));
      const __m128 sums = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
      float* out = dw + kb * crs + i;
      _mm_storeu_ps(out, _mm_add_ps(_mm_loadu_ps(out), sums));
    }
    for (; i < NI; ++i) dw[kb * crs + i] += hsum(acc[kb][i]);
  }
}

// The last crs % NI taps, one block of exactly that many.
template <int KB, int NI>
void weight_grad_rest(const float* dyw,
                      i64 ld,
                      const float* in,
                      const i64* offsets,
                      i64 rest,
                      i64 count,
                      float* dw,
                      i64 crs) {
  if constexpr (NI > 0) {
    if (rest == NI) {
      weight_grad_block<KB, NI>(dyw, ld, in, offsets, count, dw, crs);
    } else {
      weight_grad_rest<KB, NI - 1>(dyw, ld, in, offsets, rest, count, dw, crs);
    }
  }
}

// KB channels against every tap, NI taps at a time: KB * NI = 12 accumulators plus KB + 1
// registers for the loads.
template <int KB>
void weight_grad_taps(
    const float* dyw, i64 ld, const float* in, const i64* offsets, i64 crs, i64 count, float* dw) {
  constexpr int kTaps = 12 / KB;
  i64 i = 0;
  for (; i + kTaps <= crs; i += kTaps) {
    weight_grad_block<KB, kTaps>(dyw, ld, in, offsets + i, count, dw + i, crs);
  }
  weight_grad_rest<KB, kTaps - 1>(dyw, ld, in, offsets + i, crs - i, count, dw + i, crs);
}

}  // namespace

void correlate(const float* in,
               const i64* offsets,
               i64 crs,
               const float* packed_w,
               const float* bias,
               i64 k,
               i64 count,
               i64 ld,
               float* out) {
  for (i64 k0 = 0; k0 < k; k0 += kMaxChannelBlock) {
    const float* w = packed_w + k0 * crs;
    const float* b = bias != nullptr ? bias + k0 : nullptr;
    float* o = out + k0 * ld;
    // KB * V <= 12 accumulators, leaving registers for the V loads and a broadcast.
    switch (std::min<i64>(kMaxChannelBlock, k - k0)) {
      case 6:
        correlate_block<6, 2>(in, offsets, crs, w, b, count, ld, o);
        break;
      case 5:
        correlate_block<5, 2>(in, offsets, crs, w, b, count, ld, o);
        break;
      case 4:
        correlate_block<4, 3>(in, offsets, crs, w, b, count, ld, o);
        break;
      case 3:
        correlate_block<3, 4>(in, offsets, crs, w, b, count, ld, o);
        break;
      case 2:
        correlate_block<2, 6>(in, offsets, crs, w, b, count, ld, o);
        break;
      default:
        correlate_block<1, 8>(in, offsets, crs, w, b, count, ld, o);
        break;
    }
  }
}

void weight_grad(const float* dyw,
                 i64 ld,
                 i64 k,
                 const float* in,
                 const i64* offsets,
                 i64 crs,
                 i64 count,
                 float* dw) {
  // Blocks of 3 channels: KB = 2 (6 taps) measured slower, GCC feeds each FMA its own load.
  const i64 block = 3;
  for (i64 k0 = 0; k0 < k; k0 += block) {
    const float* d = dyw + k0 * ld;
    float* g = dw + k0 * crs;
    switch (std::min(block, k - k0)) {
      case 3:
        weight_grad_taps<3>(d, ld, in, offsets, crs, count, g);
        break;
      case 2:
        weight_grad_taps<2>(d, ld, in, offsets, crs, count, g);
        break;
      default:
        weight_grad_taps<1>(d, ld, in, offsets, crs, count, g);
        break;
    }
  }
}

void add_shifted_rows(const float* rows, i64 ld, i64 n, i64 count, float* out) {
  // One load and store of out per 8 columns: adding row by row instead stalls on store-to-load
  // forwarding, each row's stores overlapping the next row's loads one float apart.
  for (i64 q = 0; q < count + n - 1; q += 8) {
    __m256 v = _mm256_loadu_ps(out + q);
    for (i64 j = 0; j < n; ++j) v = _mm256_add_ps(v, _mm256_loadu_ps(rows + j * ld + q - j));
    _mm256_storeu_ps(out + q, v);
  }
}

#else  // no AVX2 + FMA: conv2d.cpp uses im2col + GEMM instead

bool available() { return false; }

void correlate(const float*, const i64*, i64, const float*, const float*, i64, i64, i64, float*) {}

void weight_grad(const float*, i64, i64, const float*, const i64*, i64, i64, float*) {}

void add_shifted_rows(const float*, i64, i64, i64, float*) {}

#endif

}  // namespace gradlens::cpu::direct
