// Register-blocked AVX2 kernels of microkernels.h. correlate: a tile of KB output rows x V vectors
// of 8 positions stays in registers while the taps run: V loads + KB broadcasts feed KB * V FMAs;
// the last partial tile uses masked loads and stores. weight_grad and dot_rows: KB x NI dot
// products accumulate 8 lanes each, then one fixed reduction tree per element.
#include "kernels/cpu/microkernels.h"

#include <algorithm>
#include <type_traits>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define GRADLENS_MICROKERNELS 1
#else
#define GRADLENS_MICROKERNELS 0
#endif

namespace gradlens::cpu::micro {

constexpr int kMaxRowBlock = 6;  // correlate's KB

i64 input_tail(i64 s) { return 64 + s + 8; }

i64 output_stride(i64 count) { return (count + 7) / 8 * 8 + 64; }

void make_offsets(i64 c, i64 r, i64 s, i64 plane, i64 wp, i64* offsets) {
  for (i64 ci = 0; ci < c; ++ci) {
    for (i64 ri = 0; ri < r; ++ri) {
      for (i64 si = 0; si < s; ++si) *offsets++ = ci * plane + ri * wp + si;
    }
  }
}

void pack_weights(const float* w, i64 k, i64 taps, float* packed) {
  for (i64 k0 = 0; k0 < k; k0 += kMaxRowBlock) {
    const i64 kb = std::min<i64>(kMaxRowBlock, k - k0);
    float* block = packed + k0 * taps;
    for (i64 i = 0; i < taps; ++i) {
      for (i64 j = 0; j < kb; ++j) block[i * kb + j] = w[(k0 + j) * taps + i];
    }
  }
}

#if GRADLENS_MICROKERNELS

bool available() { return true; }

namespace {

// Lanes [0, n) of a vector, n clamped to [0, 8].
inline __m256i lanes_below(i64 n) {
  const auto k = static_cast<int>(std::clamp<i64>(n, 0, 8));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// One tile of correlate at p0; Masked: only positions < count are read and written (the masked
// lanes load 0, so the FMA sequence of the live lanes is the same as in a full tile).
template <int KB, int V, bool Masked>
inline void correlate_tile(const float* in,
                           const i64* offsets,
                           i64 taps,
                           const float* w,
                           const float* bias,
                           i64 p0,
                           i64 count,
                           i64 ld,
                           float* out) {
  __m256i mask[V];
  if constexpr (Masked) {
    for (int v = 0; v < V; ++v) mask[v] = lanes_below(count - p0 - 8 * v);
  }
  __m256 acc[KB][V];
  for (int kb = 0; kb < KB; ++kb) {
    const __m256 init = bias != nullptr ? _mm256_set1_ps(bias[kb]) : _mm256_setzero_ps();
    for (int v = 0; v < V; ++v) acc[kb][v] = init;
  }
  const float* base = in + p0;
  const float* wi = w;
  for (i64 t = 0; t < taps; ++t, wi += KB) {
    const float* src = base + offsets[t];
    __m256 x[V];
    for (int v = 0; v < V; ++v) {
      if constexpr (Masked) {
        x[v] = _mm256_maskload_ps(src + 8 * v, mask[v]);
      } else {
        x[v] = _mm256_loadu_ps(src + 8 * v);
      }
    }
    for (int kb = 0; kb < KB; ++kb) {
      const __m256 wv = _mm256_broadcast_ss(wi + kb);
      for (int v = 0; v < V; ++v) acc[kb][v] = _mm256_fmadd_ps(wv, x[v], acc[kb][v]);
    }
  }
  for (int kb = 0; kb < KB; ++kb) {
    for (int v = 0; v < V; ++v) {
      float* dst = out + kb * ld + p0 + 8 * v;
      if constexpr (Masked) {
        _mm256_maskstore_ps(dst, mask[v], acc[kb][v]);
      } else {
        _mm256_storeu_ps(dst, acc[kb][v]);
      }
    }
  }
}

template <int KB, int V>
void correlate_block(const float* in,
                     const i64* offsets,
                     i64 taps,
                     const float* w,
                     const float* bias,
                     i64 count,
                     i64 ld,
                     float* out) {
  i64 p0 = 0;
  for (; p0 + 8 * V <= count; p0 += 8 * V) {
    correlate_tile<KB, V, false>(in, offsets, taps, w, bias, p0, count, ld, out);
  }
  if (p0 < count) correlate_tile<KB, V, true>(in, offsets, taps, w, bias, p0, count, ld, out);
}

// The horizontal sums of four accumulators as one vector [sum a, sum b, sum c, sum d], each
// ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)): the same tree whatever the group, so a lone
// accumulator (summed with zeros) rounds exactly as it would inside a group.
inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// sums[kb][i] of acc[kb][i], NI at a time in groups of four.
template <int KB, int NI, class Store>
inline void reduce_rows(const __m256 (&acc)[KB][NI], Store&& store) {
  const __m256 zero = _mm256_setzero_ps();
  for (int kb = 0; kb < KB; ++kb) {
    for (int i = 0; i < NI; i += 4) {
      const __m128 sums = hsum4(acc[kb][i],
                                i + 1 < NI ? acc[kb][i + 1] : zero,
                                i + 2 < NI ? acc[kb][i + 2] : zero,
                                i + 3 < NI ? acc[kb][i + 3] : zero);
      store(kb, i, std::min(4, NI - i), sums);
    }
  }
}

template <int KB, int NI>
void weight_grad_block(
    const float* dyw, i64 ld, const float* in, const i64* offsets, i64 count, float* dw, i64 taps) {
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
  reduce_rows<KB, NI>(acc, [&](int kb, int i, int n, __m128 sums) {
    float* out = dw + kb * taps + i;
    if (n == 4) {
      _mm_storeu_ps(out, _mm_add_ps(_mm_loadu_ps(out), sums));
    } else {
      alignas(16) float s[4];
      _mm_store_ps(s, sums);
      for (int j = 0; j < n; ++j) out[j] += s[j];
    }
  });
}

// The last taps % NI taps, one block of exactly that many.
template <int KB, int NI>
void weight_grad_rest(const float* dyw,
                      i64 ld,
                      const float* in,
                      const i64* offsets,
                      i64 rest,
                      i64 count,
                      float* dw,
                      i64 taps) {
  if constexpr (NI > 0) {
    if (rest == NI) {
      weight_grad_block<KB, NI>(dyw, ld, in, offsets, count, dw, taps);
    } else {
      weight_grad_rest<KB, NI - 1>(dyw, ld, in, offsets, rest, count, dw, taps);
    }
  }
}

// KB channels against every tap, NI taps at a time: KB * NI = 12 accumulators plus KB + 1
// registers for the loads.
template <int KB>
void weight_grad_taps(
    const float* dyw, i64 ld, const float* in, const i64* offsets, i64 taps, i64 count, float* dw) {
  constexpr int kTaps = 12 / KB;
  i64 i = 0;
  for (; i + kTaps <= taps; i += kTaps) {
    weight_grad_block<KB, kTaps>(dyw, ld, in, offsets + i, count, dw + i, taps);
  }
  weight_grad_rest<KB, kTaps - 1>(dyw, ld, in, offsets + i, taps - i, count, dw + i, taps);
}

// KB rows of a against NI rows of b; the tail of len uses masked loads (zeros add nothing).
template <int KB, int NI>
void dot_block(const float* a,
               i64 lda,
               const float* b,
               i64 ldb,
               i64 len,
               const float* bias,
               float* out,
               i64 ldo) {
  __m256 acc[KB][NI];
  for (int kb = 0; kb < KB; ++kb) {
    for (int i = 0; i < NI; ++i) acc[kb][i] = _mm256_setzero_ps();
  }
  auto step = [&](i64 j, auto load) {
    __m256 x[KB];
    for (int kb = 0; kb < KB; ++kb) x[kb] = load(a + kb * lda + j);
    for (int i = 0; i < NI; ++i) {
      const __m256 y = load(b + i * ldb + j);
      for (int kb = 0; kb < KB; ++kb) acc[kb][i] = _mm256_fmadd_ps(x[kb], y, acc[kb][i]);
    }
  };
  i64 j = 0;
  for (; j + 8 <= len; j += 8) step(j, [](const float* p) { return _mm256_loadu_ps(p); });
  if (j < len) {
    const __m256i mask = lanes_below(len - j);
    step(j, [mask](const float* p) { return _mm256_maskload_ps(p, mask); });
  }
  reduce_rows<KB, NI>(acc, [&](int kb, int i, int n, __m128 sums) {
    if (bias != nullptr) {
      alignas(16) float bv[4] = {};
      for (int t = 0; t < n; ++t) bv[t] = bias[i + t];
      sums = _mm_add_ps(sums, _mm_load_ps(bv));
    }
    alignas(16) float s[4];
    _mm_store_ps(s, sums);
    for (int t = 0; t < n; ++t) out[kb * ldo + i + t] = s[t];
  });
}

template <int KB>
void dot_columns(const float* a,
                 i64 lda,
                 const float* b,
                 i64 ldb,
                 i64 nb,
                 i64 len,
                 const float* bias,
                 float* out,
                 i64 ldo) {
  constexpr int kCols = 4;
  i64 o = 0;
  for (; o + kCols <= nb; o += kCols) {
    dot_block<KB, kCols>(
        a, lda, b + o * ldb, ldb, len, bias != nullptr ? bias + o : nullptr, out + o, ldo);
  }
  const float* bo = b + o * ldb;
  const float* biaso = bias != nullptr ? bias + o : nullptr;
  switch (nb - o) {
    case 3:
      dot_block<KB, 3>(a, lda, bo, ldb, len, biaso, out + o, ldo);
      break;
    case 2:
      dot_block<KB, 2>(a, lda, bo, ldb, len, biaso, out + o, ldo);
      break;
    case 1:
      dot_block<KB, 1>(a, lda, bo, ldb, len, biaso, out + o, ldo);
      break;
    default:
      break;
  }
}

// One block of at most 6 rows over all of count, with the widest tile its registers allow
// (KB * V <= 12 accumulators, leaving registers for the V loads and a broadcast).
void correlate_rows(const float* in,
                    const i64* offsets,
                    i64 taps,
                    const float* w,
                    const float* bias,
                    i64 rows,
                    i64 count,
                    i64 ld,
                    float* out) {
  switch (rows) {
    case 6:
      return correlate_block<6, 2>(in, offsets, taps, w, bias, count, ld, out);
    case 5:
      return correlate_block<5, 2>(in, offsets, taps, w, bias, count, ld, out);
    case 4:
      return correlate_block<4, 3>(in, offsets, taps, w, bias, count, ld, out);
    case 3:
      return correlate_block<3, 4>(in, offsets, taps, w, bias, count, ld, out);
    case 2:
      return correlate_block<2, 6>(in, offsets, taps, w, bias, count, ld, out);
    default:
      return correlate_block<1, 8>(in, offsets, taps, w, bias, count, ld, out);
  }
}

// One 16-wide tile at p0 for a block of at most 6 rows.
template <bool Masked>
void correlate_tile_rows(const float* in,
                         const i64* offsets,
                         i64 taps,
                         const float* w,
                         const float* bias,
                         i64 rows,
                         i64 p0,
                         i64 count,
                         i64 ld,
                         float* out) {
  switch (rows) {
    case 6:
      return correlate_tile<6, 2, Masked>(in, offsets, taps, w, bias, p0, count, ld, out);
    case 5:
      return correlate_tile<5, 2, Masked>(in, offsets, taps, w, bias, p0, count, ld, out);
    case 4:
      return correlate_tile<4, 2, Masked>(in, offsets, taps, w, bias, p0, count, ld, out);
    case 3:
      return correlate_tile<3, 2, Masked>(in, offsets, taps, w, bias, p0, count, ld, out);
    case 2:
      return correlate_tile<2, 2, Masked>(in, offsets, taps, w, bias, p0, count, ld, out);
    default:
      return correlate_tile<1, 2, Masked>(in, offsets, taps, w, bias, p0, count, ld, out);
  }
}

}  // namespace

void correlate(const float* in,
               const i64* offsets,
               i64 taps,
               const float* packed_w,
               const float* bias,
               i64 k,
               i64 count,
               i64 ld,
               float* out) {
  if (count <= 0 || k <= 0) return;
  // Taps spread over more than half of L1 (linear's rows of w or x): every block of 6 rows at one
  // 16-wide tile before the next tile, so the tile's input stays in L1 across the blocks.
  // Otherwise (conv's taps around one plane) block by block, each with its widest tile.
  const i64 span = taps > 0 ? *std::max_element(offsets, offsets + taps) + 16 : 0;
  const bool tile_major = k > kMaxRowBlock && span * static_cast<i64>(sizeof(float)) > (16 << 10);
  if (!tile_major) {
    for (i64 k0 = 0; k0 < k; k0 += kMaxRowBlock) {
      correlate_rows(in,
                     offsets,
                     taps,
                     packed_w + k0 * taps,
                     bias != nullptr ? bias + k0 : nullptr,
                     std::min<i64>(kMaxRowBlock, k - k0),
                     count,
                     ld,
                     out + k0 * ld);
    }
    return;
  }
  constexpr i64 kTile = 16;
  auto blocks_at = [&](i64 p0, auto masked) {
    for (i64 k0 = 0; k0 < k; k0 += kMaxRowBlock) {
      correlate_tile_rows<decltype(masked)::value>(in,
                                                   offsets,
                                                   taps,
                                                   packed_w + k0 * taps,
                                                   bias != nullptr ? bias + k0 : nullptr,
                                                   std::min<i64>(kMaxRowBlock, k - k0),
                                                   p0,
                                                   count,
                                                   ld,
                                                   out + k0 * ld);
    }
  };
  i64 p0 = 0;
  for (; p0 + kTile <= count; p0 += kTile) blocks_at(p0, std::false_type{});
  if (p0 < count) blocks_at(p0, std::true_type{});
}

void weight_grad(const float* dyw,
                 i64 ld,
                 i64 k,
                 const float* in,
                 const i64* offsets,
                 i64 taps,
                 i64 count,
                 float* dw) {
  // Blocks of 3 channels: KB = 2 (6 taps) measured slower, GCC feeds each FMA its own load.
  constexpr i64 kBlock = 3;
  for (i64 k0 = 0; k0 < k; k0 += kBlock) {
    const float* d = dyw + k0 * ld;
    float* g = dw + k0 * taps;
    switch (std::min(kBlock, k - k0)) {
      case 3:
        weight_grad_taps<3>(d, ld, in, offsets, taps, count, g);
        break;
      case 2:
        weight_grad_taps<2>(d, ld, in, offsets, taps, count, g);
        break;
      default:
        weight_grad_taps<1>(d, ld, in, offsets, taps, count, g);
        break;
    }
  }
}

void dot_rows(const float* a,
              i64 lda,
              i64 na,
              const float* b,
              i64 ldb,
              i64 nb,
              i64 len,
              const float* bias,
              float* out,
              i64 ldo) {
  constexpr i64 kRows = 3;  // 3 x 4 accumulators + 3 + 1 registers for the loads
  for (i64 i0 = 0; i0 < na; i0 += kRows) {
    const float* ai = a + i0 * lda;
    float* oi = out + i0 * ldo;
    switch (std::min(kRows, na - i0)) {
      case 3:
        dot_columns<3>(ai, lda, b, ldb, nb, len, bias, oi, ldo);
        break;
      case 2:
        dot_columns<2>(ai, lda, b, ldb, nb, len, bias, oi, ldo);
        break;
      default:
        dot_columns<1>(ai, lda, b, ldb, nb, len, bias, oi, ldo);
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

#else  // no AVX2 + FMA: conv2d.cpp and linear.cpp use Eigen instead

bool available() { return false; }

void correlate(const float*, const i64*, i64, const float*, const float*, i64, i64, i64, float*) {}

void weight_grad(const float*, i64, i64, const float*, const i64*, i64, i64, float*) {}

void dot_rows(const float*, i64, i64, const float*, i64, i64, i64, const float*, float*, i64) {}

void add_shifted_rows(const float*, i64, i64, i64, float*) {}

#endif

}  // namespace gradlens::cpu::micro
