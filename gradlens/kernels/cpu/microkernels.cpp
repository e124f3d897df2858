// Register-blocked kernels of microkernels.h over simd::Vec, so each ISA variant gets its own
// widths: correlate keeps a tile of KB output rows x V vectors in registers while the taps run
// (V loads + KB broadcasts feed KB * V FMAs); the last partial tile uses masked loads and stores.
// weight_grad and dot_rows: KB x NI dot products accumulate a vector each, then one fixed reduction
// tree per element. Tile sizes follow the register count (16 for SSE2/AVX2, 32 for AVX-512).
#include "gradlens/kernels/cpu/microkernels.h"

#include <algorithm>
#include <type_traits>

#include "gradlens/kernels/cpu/simd.h"

namespace gradlens::cpu::GRADLENS_CPU_ISA::micro {

using simd::Vec;
constexpr int kLanes = Vec::kLanes;
constexpr bool kWide = Vec::kRegisters >= 32;
constexpr int kMaxRowBlock = kWide ? 8 : 6;  // correlate's KB
constexpr int kAccumulators = kWide ? 24 : 12;

// correlate's vectors per tile for KB rows: KB * V accumulators, V loads and a broadcast in the
// registers. The 16-register row is the one measured on AVX2 (3 x 4 beats 3 x 3 despite a spill).
constexpr int kTileVectors16[] = {0, 8, 6, 4, 3, 2, 2};
constexpr int kTileVectors32[] = {0, 8, 8, 7, 6, 5, 4, 3, 3};
template <int KB>
constexpr int tile_vectors() {
  return kWide ? kTileVectors32[KB] : kTileVectors16[KB];
}

i64 input_tail(i64 s) { return 64 + s + simd::kMaxLanes; }

i64 output_stride(i64 count) {
  return (count + simd::kMaxLanes - 1) / simd::kMaxLanes * simd::kMaxLanes + 64;
}

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

namespace {

// Calls fn(std::integral_constant<int, N>) for the runtime n in [1, Max].
template <int Max, class Fn>
inline void with_count(i64 n, Fn&& fn) {
  if constexpr (Max > 1) {
    if (n < Max) return with_count<Max - 1>(n, fn);
  }
  fn(std::integral_constant<int, Max>{});
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
  typename Vec::Mask mask[V];
  if constexpr (Masked) {
    for (int v = 0; v < V; ++v) mask[v] = Vec::mask_below(count - p0 - kLanes * v);
  }
  Vec acc[KB][V];
  for (int kb = 0; kb < KB; ++kb) {
    const Vec init = bias != nullptr ? Vec::set1(bias[kb]) : Vec::zero();
    for (int v = 0; v < V; ++v) acc[kb][v] = init;
  }
  const float* base = in + p0;
  const float* wi = w;
  for (i64 t = 0; t < taps; ++t, wi += KB) {
    const float* src = base + offsets[t];
    Vec x[V];
    for (int v = 0; v < V; ++v) {
      if constexpr (Masked) {
        x[v] = Vec::load(src + kLanes * v, mask[v]);
      } else {
        x[v] = Vec::load(src + kLanes * v);
      }
    }
    for (int kb = 0; kb < KB; ++kb) {
      const Vec wv = Vec::broadcast(wi + kb);
      for (int v = 0; v < V; ++v) acc[kb][v] = fmadd(wv, x[v], acc[kb][v]);
    }
  }
  for (int kb = 0; kb < KB; ++kb) {
    for (int v = 0; v < V; ++v) {
      float* dst = out + kb * ld + p0 + kLanes * v;
      if constexpr (Masked) {
        acc[kb][v].store(dst, mask[v]);
      } else {
        acc[kb][v].store(dst);
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
  for (; p0 + kLanes * V <= count; p0 += kLanes * V) {
    correlate_tile<KB, V, false>(in, offsets, taps, w, bias, p0, count, ld, out);
  }
  // The tail tile only as wide as the positions left: a full-width masked tile multiplies its
  // empty vectors too (conv1's dx, 32 positions left of a 112-wide tile, did 7 vectors of work for
  // 2).
  if (p0 < count) {
    with_count<V>((count - p0 + kLanes - 1) / kLanes, [&](auto v) {
      correlate_tile<KB, decltype(v)::value, true>(in, offsets, taps, w, bias, p0, count, ld, out);
    });
  }
}

// sums[kb][i] of acc[kb][i], NI at a time in groups of four (a lone accumulator is summed with
// zeros, which rounds exactly as it would inside a group).
template <int KB, int NI, class Store>
inline void reduce_rows(const Vec (&acc)[KB][NI], Store&& store) {
  const Vec zero = Vec::zero();
  for (int kb = 0; kb < KB; ++kb) {
    for (int i = 0; i < NI; i += 4) {
      float sums[4];
      hsum4(acc[kb][i],
            i + 1 < NI ? acc[kb][i + 1] : zero,
            i + 2 < NI ? acc[kb][i + 2] : zero,
            i + 3 < NI ? acc[kb][i + 3] : zero,
            sums);
      store(kb, i, std::min(4, NI - i), sums);
    }
  }
}

template <int KB, int NI>
void weight_grad_block(
    const float* dyw, i64 ld, const float* in, const i64* offsets, i64 count, float* dw, i64 taps) {
  Vec acc[KB][NI];
  for (int kb = 0; kb < KB; ++kb) {
    for (int i = 0; i < NI; ++i) acc[kb][i] = Vec::zero();
  }
  const float* src[NI];
  for (int i = 0; i < NI; ++i) src[i] = in + offsets[i];
  for (i64 p = 0; p < count; p += kLanes) {
    Vec d[KB];
    for (int kb = 0; kb < KB; ++kb) d[kb] = Vec::load(dyw + kb * ld + p);
    for (int i = 0; i < NI; ++i) {
      const Vec x = Vec::load(src[i] + p);
      for (int kb = 0; kb < KB; ++kb) acc[kb][i] = fmadd(d[kb], x, acc[kb][i]);
    }
  }
  reduce_rows<KB, NI>(acc, [&](int kb, int i, int n, const float* sums) {
    float* out = dw + kb * taps + i;
    for (int j = 0; j < n; ++j) out[j] += sums[j];
  });
}

// KB channels against every tap, kAccumulators / KB taps at a time.
template <int KB>
void weight_grad_taps(
    const float* dyw, i64 ld, const float* in, const i64* offsets, i64 taps, i64 count, float* dw) {
  constexpr int kTaps = kAccumulators / KB;
  i64 i = 0;
  for (; i + kTaps <= taps; i += kTaps) {
    weight_grad_block<KB, kTaps>(dyw, ld, in, offsets + i, count, dw + i, taps);
  }
  if (i < taps) {
    with_count<kTaps - 1>(taps - i, [&](auto rest) {
      weight_grad_block<KB, decltype(rest)::value>(dyw, ld, in, offsets + i, count, dw + i, taps);
    });
  }
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
  Vec acc[KB][NI];
  for (int kb = 0; kb < KB; ++kb) {
    for (int i = 0; i < NI; ++i) acc[kb][i] = Vec::zero();
  }
  auto step = [&](i64 j, auto load) {
    Vec x[KB];
    for (int kb = 0; kb < KB; ++kb) x[kb] = load(a + kb * lda + j);
    for (int i = 0; i < NI; ++i) {
      const Vec y = load(b + i * ldb + j);
      for (int kb = 0; kb < KB; ++kb) acc[kb][i] = fmadd(x[kb], y, acc[kb][i]);
    }
  };
  i64 j = 0;
  for (; j + kLanes <= len; j += kLanes) step(j, [](const float* p) { return Vec::load(p); });
  if (j < len) {
    const auto mask = Vec::mask_below(len - j);
    step(j, [mask](const float* p) { return Vec::load(p, mask); });
  }
  reduce_rows<KB, NI>(acc, [&](int kb, int i, int n, const float* sums) {
    for (int t = 0; t < n; ++t) {
      out[kb * ldo + i + t] = bias != nullptr ? sums[t] + bias[i + t] : sums[t];
    }
  });
}

// dot_rows' blocks: kDotRows x kDotCols accumulators plus kDotRows + 1 registers for the loads.
constexpr int kDotRows = kWide ? 4 : 3;
constexpr int kDotCols = kWide ? 6 : 4;

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
  i64 o = 0;
  for (; o + kDotCols <= nb; o += kDotCols) {
    dot_block<KB, kDotCols>(
        a, lda, b + o * ldb, ldb, len, bias != nullptr ? bias + o : nullptr, out + o, ldo);
  }
  if (o < nb) {
    with_count<kDotCols - 1>(nb - o, [&](auto rest) {
      dot_block<KB, decltype(rest)::value>(
          a, lda, b + o * ldb, ldb, len, bias != nullptr ? bias + o : nullptr, out + o, ldo);
    });
  }
}

// One block of at most kMaxRowBlock rows over all of count, with the widest tile its registers
// allow.
void correlate_rows(const float* in,
                    const i64* offsets,
                    i64 taps,
                    const float* w,
                    const float* bias,
                    i64 rows,
                    i64 count,
                    i64 ld,
                    float* out) {
  with_count<kMaxRowBlock>(rows, [&](auto kb) {
    constexpr int KB = decltype(kb)::value;
    correlate_block<KB, tile_vectors<KB>()>(in, offsets, taps, w, bias, count, ld, out);
  });
}

// One 2-vector tile at p0 for a block of at most kMaxRowBlock rows.
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
  with_count<kMaxRowBlock>(rows, [&](auto kb) {
    correlate_tile<decltype(kb)::value, 2, Masked>(in, offsets, taps, w, bias, p0, count, ld, out);
  });
}

// Taps spread over more than half of L1 (linear's rows of w or x): every block of rows at one
// 2-vector tile before the next tile, so the tile's input stays in L1 across the blocks.
// Otherwise (conv's taps around one plane) block by block, each with its widest tile.
bool tile_major(const i64* offsets, i64 taps, i64 k) {
  const i64 span = taps > 0 ? *std::max_element(offsets, offsets + taps) + 2 * kLanes : 0;
  return k > kMaxRowBlock && span * static_cast<i64>(sizeof(float)) > (16 << 10);
}

}  // namespace

i64 correlate_tile_width(const i64* offsets, i64 taps, i64 k) {
  if (tile_major(offsets, taps, k)) return 2 * kLanes;
  i64 width = 0;
  with_count<kMaxRowBlock>(std::clamp<i64>(k, 1, kMaxRowBlock),
                           [&](auto kb) { width = kLanes * tile_vectors<decltype(kb)::value>(); });
  return width;
}

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
  if (!tile_major(offsets, taps, k)) {
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
  constexpr i64 kTile = 2 * kLanes;
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
  // Blocks of 3 channels: KB = 2 measured slower on AVX2, GCC feeds each FMA its own load.
  constexpr i64 kBlock = 3;
  for (i64 k0 = 0; k0 < k; k0 += kBlock) {
    with_count<kBlock>(std::min(kBlock, k - k0), [&](auto kb) {
      weight_grad_taps<decltype(kb)::value>(
          dyw + k0 * ld, ld, in, offsets, taps, count, dw + k0 * taps);
    });
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
  for (i64 i0 = 0; i0 < na; i0 += kDotRows) {
    with_count<kDotRows>(std::min<i64>(kDotRows, na - i0), [&](auto kb) {
      dot_columns<decltype(kb)::value>(
          a + i0 * lda, lda, b, ldb, nb, len, bias, out + i0 * ldo, ldo);
    });
  }
}

void add_shifted_rows(const float* rows, i64 ld, i64 n, i64 count, float* out) {
  // One load and store of out per vector: adding row by row instead stalls on store-to-load
  // forwarding, each row's stores overlapping the next row's loads one float apart.
  for (i64 q = 0; q < count + n - 1; q += kLanes) {
    Vec v = Vec::load(out + q);
    for (i64 j = 0; j < n; ++j) v = v + Vec::load(rows + j * ld + q - j);
    v.store(out + q);
  }
}

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA::micro
