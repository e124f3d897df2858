// The 2x2, stride-2, unpadded max pool, shared by max_pool2d (pool.cpp) and the conv + ReLU + pool
// op (conv2d.cpp), so both pick the same maximum: the first in scan order (top left, top right,
// bottom left, bottom right), a NaN always winning, as PyTorch's CPU kernel. Compiled once per
// ISA, like its callers.
#pragma once

#include <algorithm>
#include <cstdint>

#include "gradlens/kernels/cpu/common/scratch.h"
#include "gradlens/kernels/cpu/cpu_backend.h"
#include "gradlens/kernels/cpu/simd.h"

namespace gradlens::cpu::GRADLENS_CPU_ISA {

// x < 0 ? 0 : x, so NaN and -0 stay what the separate relu makes them.
inline float relu_value(float x) { return x < 0.f ? 0.f : x; }

// Flat, branch-free scan: candidate i has its top-left corner at x[2i] and its bottom row w
// further; the caller keeps the candidates that are windows (row pair g's start at g * w) and
// drops those straddling two row pairs. Starting from the first element equals starting from
// -inf: it is always taken. With Relu each value is ReLU'd as it is read.
template <bool Relu>
inline void pool_candidates_2x2(const float* __restrict x,
                                std::int32_t w,
                                std::int32_t count,
                                float* __restrict best_out,
                                std::int32_t* __restrict at) {
  const auto read = [](float v) { return Relu ? relu_value(v) : v; };
  for (std::int32_t i = 0; i < count; ++i) {
    const float v0 = read(x[2 * i]), v1 = read(x[2 * i + 1]);
    const float v2 = read(x[2 * i + w]), v3 = read(x[2 * i + w + 1]);
    float best = v0;
    std::int32_t k = 0;
    const bool t1 = v1 > best || v1 != v1;  // v != v: NaN wins
    best = t1 ? v1 : best;
    k = t1 ? 1 : k;
    const bool t2 = v2 > best || v2 != v2;
    best = t2 ? v2 : best;
    k = t2 ? w : k;
    const bool t3 = v3 > best || v3 != v3;
    best = t3 ? v3 : best;
    k = t3 ? w + 1 : k;
    best_out[i] = best;
    at[i] = 2 * i + k;
  }
}

#if defined(__AVX512F__)
// One row pair's windows (rows `stride` apart): y[j] and idx[j] (the maximum as a plane index,
// rows `cols` apart, from `corner`, the pair's first) for j < pw. Even and odd columns split by
// permutes, the four comparisons of pool_candidates_2x2 in lanes.
template <bool Relu>
void pool_row_pair_2x2(const float* top,
                       i64 stride,
                       i64 pw,
                       i64 cols,
                       std::int32_t corner,
                       float* y,
                       std::int32_t* idx) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i lane2 = _mm512_add_epi32(even, _mm512_set1_epi32(corner));
  const auto load = [](__mmask16 m, const float* p) {
    const __m512 v = _mm512_maskz_loadu_ps(m, p);
    return Relu ? _mm512_max_ps(_mm512_setzero_ps(), v) : v;  // max(0, NaN) is NaN
  };
  const auto wins = [](__m512 v, __m512 best) {  // v > best, or v is NaN: a later NaN wins too
    return static_cast<__mmask16>(_mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) |
                                  _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
  };
  for (i64 j0 = 0; j0 < pw; j0 += 16) {
    const i64 n = std::min<i64>(16, pw - j0);
    const auto first = static_cast<__mmask16>((1u << std::min<i64>(16, 2 * n)) - 1u);
    const auto second = static_cast<__mmask16>((1u << std::max<i64>(0, 2 * n - 16)) - 1u);
    const float* r0 = top + 2 * j0;
    const float* r1 = r0 + stride;
    const __m512 r0a = load(first, r0), r0b = load(second, r0 + 16);
    const __m512 r1a = load(first, r1), r1b = load(second, r1 + 16);
    __m512 best = _mm512_permutex2var_ps(r0a, even, r0b);
    __m512i code = _mm512_setzero_si512();  // top left 0, top right 1, bottom left 2, right 3
    const __m512 candidates[3] = {_mm512_permutex2var_ps(r0a, odd, r0b),
                                  _mm512_permutex2var_ps(r1a, even, r1b),
                                  _mm512_permutex2var_ps(r1a, odd, r1b)};
    for (int q = 0; q < 3; ++q) {
      const __mmask16 m = wins(candidates[q], best);
      best = _mm512_mask_mov_ps(best, m, candidates[q]);
      code = _mm512_mask_mov_epi32(code, m, _mm512_set1_epi32(q + 1));
    }
    // corner + 2 j + (code & 1) + (code >> 1) * cols
    const __m512i at = _mm512_add_epi32(
        _mm512_add_epi32(lane2, _mm512_set1_epi32(2 * static_cast<std::int32_t>(j0))),
        _mm512_add_epi32(_mm512_and_si512(code, _mm512_set1_epi32(1)),
                         _mm512_mullo_epi32(_mm512_srli_epi32(code, 1),
                                            _mm512_set1_epi32(static_cast<std::int32_t>(cols)))));
    const auto live = static_cast<__mmask16>((1u << n) - 1u);
    _mm512_mask_storeu_ps(y + j0, live, best);
    _mm512_mask_storeu_epi32(idx + j0, live, at);
  }
}
#endif

// The 2x2 pool of `planes` planes (`plane_stride` apart) of rows x cols values, rows `stride`
// apart: y [planes, rows / 2, cols / 2] and idx into each rows * cols plane. AVX-512 goes row pair
// by row pair, but for packed planes with under 8 windows a row: all planes are then one flat run
// of candidates, computing and dropping those between row pairs and planes (short planes share one
// run instead of paying a call each: the tutorial's 10x10 ran 1.3x faster so, its 28x28 1.6x
// slower than by row pairs; 32 images, one thread). Wide conv rows (conv2d_relu_pool) stay on row
// pairs: their gaps would be most of a flat run.
template <bool Relu>
void max_pool_2x2(const float* src,
                  i64 planes,
                  i64 plane_stride,
                  i64 stride,
                  i64 rows,
                  i64 cols,
                  float* y,
                  std::int32_t* idx) {
  const i64 ph = rows / 2, pw = cols / 2;
  if (ph == 0 || pw == 0 || planes == 0) return;
#if defined(__AVX512F__)
  if (pw >= 8 || plane_stride != rows * cols) {
    for (i64 k = 0; k < planes; ++k) {
      for (i64 g = 0; g < ph; ++g) {
        pool_row_pair_2x2<Relu>(src + k * plane_stride + 2 * g * stride,
                                stride,
                                pw,
                                cols,
                                static_cast<std::int32_t>(2 * g * cols),
                                y + (k * ph + g) * pw,
                                idx + (k * ph + g) * pw);
      }
    }
    return;
  }
#endif
  if (planes > 1 && plane_stride % 2 != 0) {  // candidates start at even offsets only
    for (i64 k = 0; k < planes; ++k) {
      max_pool_2x2<Relu>(src + k * plane_stride,
                         1,
                         plane_stride,
                         stride,
                         rows,
                         cols,
                         y + k * ph * pw,
                         idx + k * ph * pw);
    }
    return;
  }
  thread_local ScratchBuffer best_scratch, at_scratch;
  const i64 half = plane_stride / 2;
  const i64 count = (planes - 1) * half + (ph - 1) * stride + pw;
  float* best = best_scratch.get(count);
  auto* at = at_scratch.get<std::int32_t>(count);
  pool_candidates_2x2<Relu>(
      src, static_cast<std::int32_t>(stride), static_cast<std::int32_t>(count), best, at);
  for (i64 k = 0; k < planes; ++k) {
    for (i64 g = 0; g < ph; ++g) {
      const i64 first = k * half + g * stride, out = (k * ph + g) * pw;
      simd::copy_row(y + out, best + first, pw);
      if (stride == cols) {  // a plain plane (max_pool2d): its offset from the plane's start
        const auto start = static_cast<std::int32_t>(k * plane_stride);
        for (i64 j = 0; j < pw; ++j) idx[out + j] = at[first + j] - start;
        continue;
      }
      for (i64 j = 0; j < pw; ++j) {
        const i64 c = at[first + j] - 2 * (first + j);  // 0, 1, stride or stride + 1
        const i64 down = c >= stride ? 1 : 0;
        idx[out + j] = static_cast<std::int32_t>((2 * g + down) * cols + 2 * j + c - down * stride);
      }
    }
  }
}

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA
