// Vec: one SIMD register of floats for the ISA this translation unit is compiled for, with just
// what the micro-kernels need (loads and stores, masked for tails, FMA, add and subtract, four
// horizontal sums at once, a fused ReLU's two selections, and (de)interleaving of two phases).
// The FMA types also take masks of any lane range and loads that fill only a mask's lanes. The
// micro-kernels are written once over it; kernels/CMakeLists.txt compiles them per ISA. Every
// horizontal sum uses one fixed tree per element, so a variant's results never depend on how its
// accumulators were grouped.
#pragma once

#include <algorithm>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace gradlens::cpu::simd {

using i64 = std::int64_t;

/// The widest Vec of any variant: buffers that the micro-kernels over-read are padded by this
/// much, so every variant honours the same contracts.
inline constexpr int kMaxLanes = 16;

#if defined(__AVX2__) && defined(__FMA__)

// 8 lanes; the building block of the AVX-512 layouts below too.
struct Vec8 {
  static constexpr int kLanes = 8;
  static constexpr int kRegisters = 16;
  using Mask = __m256i;
  __m256 v;

  static Mask mask_below(i64 n) {
    const auto k = static_cast<int>(std::clamp<i64>(n, 0, 8));
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  // lanes [lo, hi)
  static Mask mask_range(i64 lo, i64 hi) {
    return _mm256_andnot_si256(mask_below(lo), mask_below(hi));
  }
  static Vec8 zero() { return {_mm256_setzero_ps()}; }
  static Vec8 set1(float x) { return {_mm256_set1_ps(x)}; }
  static Vec8 broadcast(const float* p) { return {_mm256_broadcast_ss(p)}; }
  static Vec8 load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static Vec8 load(const float* p, Mask m) { return {_mm256_maskload_ps(p, m)}; }
  // The lanes of m from p, the others from `rest`.
  static Vec8 load(const float* p, Mask m, Vec8 rest) {
    return {_mm256_blendv_ps(rest.v, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m))};
  }
  // [lo, hi] = [a0 b0 a1 b1 ...]: two phases into one run of 2 kLanes floats
  static void interleave(Vec8 a, Vec8 b, Vec8& lo, Vec8& hi) {
    const __m256 l = _mm256_unpacklo_ps(a.v, b.v), h = _mm256_unpackhi_ps(a.v, b.v);
    lo.v = _mm256_permute2f128_ps(l, h, 0x20);
    hi.v = _mm256_permute2f128_ps(l, h, 0x31);
  }
  // The inverse: even = [lo0 lo2 ... hi0 hi2 ...], odd = [lo1 lo3 ... hi1 hi3 ...]
  static void deinterleave(Vec8 lo, Vec8 hi, Vec8& even, Vec8& odd) {
    const auto in_order = [](__m256 x) {  // [a0 a2 b0 b2 | a4 a6 b4 b6] -> [a0 a2 a4 a6 b0 ...]
      return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(x), _MM_SHUFFLE(3, 1, 2, 0)));
    };
    even.v = in_order(_mm256_shuffle_ps(lo.v, hi.v, _MM_SHUFFLE(2, 0, 2, 0)));
    odd.v = in_order(_mm256_shuffle_ps(lo.v, hi.v, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  void store(float* p, Mask m) const { _mm256_maskstore_ps(p, m, v); }
  friend Vec8 fmadd(Vec8 a, Vec8 b, Vec8 c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
  friend Vec8 operator+(Vec8 a, Vec8 b) { return {_mm256_add_ps(a.v, b.v)}; }
  friend Vec8 operator-(Vec8 a, Vec8 b) { return {_mm256_sub_ps(a.v, b.v)}; }
  // x < 0 ? 0 : x (max(0, x) returns its second operand when either is NaN), and where(y > 0).
  friend Vec8 relu(Vec8 x) { return {_mm256_max_ps(_mm256_setzero_ps(), x.v)}; }
  friend Vec8 where_positive(Vec8 y, Vec8 x) {
    return {_mm256_and_ps(_mm256_cmp_ps(y.v, _mm256_setzero_ps(), _CMP_GT_OQ), x.v)};
  }
  // [sum a, sum b, sum c, sum d], each ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)).
  friend void hsum4(Vec8 a, Vec8 b, Vec8 c, Vec8 d, float* out) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a.v, b.v), _mm256_hadd_ps(c.v, d.v));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  }
};

#endif

#if defined(__AVX512F__)

// 16 lanes in one zmm register; AVX-512 has 32 of them.
struct Vec16 {
  static constexpr int kLanes = 16;
  static constexpr int kRegisters = 32;
  using Mask = __mmask16;
  __m512 v;

  static Mask mask_below(i64 n) {
    return static_cast<Mask>((1u << std::clamp<i64>(n, 0, 16)) - 1u);
  }
  static Mask mask_range(i64 lo, i64 hi) {
    return static_cast<Mask>(mask_below(hi) & ~mask_below(lo));
  }
  static Vec16 zero() { return {_mm512_setzero_ps()}; }
  static Vec16 set1(float x) { return {_mm512_set1_ps(x)}; }
  static Vec16 broadcast(const float* p) { return {_mm512_set1_ps(*p)}; }
  static Vec16 load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static Vec16 load(const float* p, Mask m) { return {_mm512_maskz_loadu_ps(m, p)}; }
  static Vec16 load(const float* p, Mask m, Vec16 rest) {
    return {_mm512_mask_loadu_ps(rest.v, m, p)};
  }
  static void interleave(Vec16 a, Vec16 b, Vec16& lo, Vec16& hi) {
    const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    lo.v = _mm512_permutex2var_ps(a.v, first, b.v);
    hi.v = _mm512_permutex2var_ps(a.v, _mm512_add_epi32(first, _mm512_set1_epi32(8)), b.v);
  }
  static void deinterleave(Vec16 lo, Vec16 hi, Vec16& even, Vec16& odd) {
    const __m512i evens =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    even.v = _mm512_permutex2var_ps(lo.v, evens, hi.v);
    odd.v = _mm512_permutex2var_ps(lo.v, _mm512_add_epi32(evens, _mm512_set1_epi32(1)), hi.v);
  }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  void store(float* p, Mask m) const { _mm512_mask_storeu_ps(p, m, v); }
  friend Vec16 fmadd(Vec16 a, Vec16 b, Vec16 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  friend Vec16 operator+(Vec16 a, Vec16 b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend Vec16 operator-(Vec16 a, Vec16 b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend Vec16 relu(Vec16 x) { return {_mm512_max_ps(_mm512_setzero_ps(), x.v)}; }
  friend Vec16 where_positive(Vec16 y, Vec16 x) {
    return {_mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y.v, _mm512_setzero_ps(), _CMP_GT_OQ), x.v)};
  }
  // Lanes i and i + 8 first, then Vec8's tree: the same arithmetic as Vec16x2 below.
  friend void hsum4(Vec16 a, Vec16 b, Vec16 c, Vec16 d, float* out) {
    auto fold = [](__m512 x) {
      return Vec8{_mm256_add_ps(_mm512_castps512_ps256(x),
                                _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)))};
    };
    hsum4(fold(a.v), fold(b.v), fold(c.v), fold(d.v), out);
  }
};
using Vec = Vec16;

#elif defined(GRADLENS_CPU_AVX512_ON_AVX2) && defined(__AVX2__) && defined(__FMA__)

// Test-only: Vec16's lanes as two AVX2 halves, with Vec16's register budget, so the AVX-512
// variant's tiling, masks and tails run (bit for bit) on machines without AVX-512.
struct Vec16x2 {
  static constexpr int kLanes = 16;
  static constexpr int kRegisters = 32;
  struct Mask {
    Vec8::Mask lo, hi;
  };
  Vec8 lo, hi;

  static Mask mask_below(i64 n) { return {Vec8::mask_below(n), Vec8::mask_below(n - 8)}; }
  static Mask mask_range(i64 lo, i64 hi) {
    return {Vec8::mask_range(lo, hi), Vec8::mask_range(lo - 8, hi - 8)};
  }
  static Vec16x2 zero() { return {Vec8::zero(), Vec8::zero()}; }
  static Vec16x2 set1(float x) { return {Vec8::set1(x), Vec8::set1(x)}; }
  static Vec16x2 broadcast(const float* p) { return {Vec8::broadcast(p), Vec8::broadcast(p)}; }
  static Vec16x2 load(const float* p) { return {Vec8::load(p), Vec8::load(p + 8)}; }
  static Vec16x2 load(const float* p, Mask m) {
    return {Vec8::load(p, m.lo), Vec8::load(p + 8, m.hi)};
  }
  static Vec16x2 load(const float* p, Mask m, Vec16x2 rest) {
    return {Vec8::load(p, m.lo, rest.lo), Vec8::load(p + 8, m.hi, rest.hi)};
  }
  static void interleave(Vec16x2 a, Vec16x2 b, Vec16x2& lo, Vec16x2& hi) {
    Vec8::interleave(a.lo, b.lo, lo.lo, lo.hi);
    Vec8::interleave(a.hi, b.hi, hi.lo, hi.hi);
  }
  static void deinterleave(Vec16x2 lo, Vec16x2 hi, Vec16x2& even, Vec16x2& odd) {
    Vec8::deinterleave(lo.lo, lo.hi, even.lo, odd.lo);
    Vec8::deinterleave(hi.lo, hi.hi, even.hi, odd.hi);
  }
  void store(float* p) const {
    lo.store(p);
    hi.store(p + 8);
  }
  void store(float* p, Mask m) const {
    lo.store(p, m.lo);
    hi.store(p + 8, m.hi);
  }
  friend Vec16x2 fmadd(Vec16x2 a, Vec16x2 b, Vec16x2 c) {
    return {fmadd(a.lo, b.lo, c.lo), fmadd(a.hi, b.hi, c.hi)};
  }
  friend Vec16x2 operator+(Vec16x2 a, Vec16x2 b) { return {a.lo + b.lo, a.hi + b.hi}; }
  friend Vec16x2 operator-(Vec16x2 a, Vec16x2 b) { return {a.lo - b.lo, a.hi - b.hi}; }
  friend Vec16x2 relu(Vec16x2 x) { return {relu(x.lo), relu(x.hi)}; }
  friend Vec16x2 where_positive(Vec16x2 y, Vec16x2 x) {
    return {where_positive(y.lo, x.lo), where_positive(y.hi, x.hi)};
  }
  friend void hsum4(Vec16x2 a, Vec16x2 b, Vec16x2 c, Vec16x2 d, float* out) {
    hsum4(a.lo + a.hi, b.lo + b.hi, c.lo + c.hi, d.lo + d.hi, out);
  }
};
using Vec = Vec16x2;

#elif defined(__AVX2__) && defined(__FMA__)

using Vec = Vec8;

#elif defined(__SSE2__)

// Baseline x86-64: 4 lanes, no FMA (a multiply and an add, two roundings).
struct Vec4 {
  static constexpr int kLanes = 4;
  static constexpr int kRegisters = 16;
  using Mask = int;  // live lanes
  __m128 v;

  static Mask mask_below(i64 n) { return static_cast<int>(std::clamp<i64>(n, 0, 4)); }
  static Vec4 zero() { return {_mm_setzero_ps()}; }
  static Vec4 set1(float x) { return {_mm_set1_ps(x)}; }
  static Vec4 broadcast(const float* p) { return {_mm_set1_ps(*p)}; }
  static Vec4 load(const float* p) { return {_mm_loadu_ps(p)}; }
  static Vec4 load(const float* p, Mask m) {
    alignas(16) float lanes[4] = {};
    std::copy(p, p + m, lanes);
    return {_mm_load_ps(lanes)};
  }
  static void interleave(Vec4 a, Vec4 b, Vec4& lo, Vec4& hi) {
    lo.v = _mm_unpacklo_ps(a.v, b.v);
    hi.v = _mm_unpackhi_ps(a.v, b.v);
  }
  static void deinterleave(Vec4 lo, Vec4 hi, Vec4& even, Vec4& odd) {
    even.v = _mm_shuffle_ps(lo.v, hi.v, _MM_SHUFFLE(2, 0, 2, 0));
    odd.v = _mm_shuffle_ps(lo.v, hi.v, _MM_SHUFFLE(3, 1, 3, 1));
  }
  void store(float* p) const { _mm_storeu_ps(p, v); }
  void store(float* p, Mask m) const {
    alignas(16) float lanes[4];
    _mm_store_ps(lanes, v);
    std::copy(lanes, lanes + m, p);
  }
  friend Vec4 fmadd(Vec4 a, Vec4 b, Vec4 c) { return {_mm_add_ps(_mm_mul_ps(a.v, b.v), c.v)}; }
  friend Vec4 operator+(Vec4 a, Vec4 b) { return {_mm_add_ps(a.v, b.v)}; }
  friend Vec4 operator-(Vec4 a, Vec4 b) { return {_mm_sub_ps(a.v, b.v)}; }
  friend Vec4 relu(Vec4 x) { return {_mm_max_ps(_mm_setzero_ps(), x.v)}; }
  friend Vec4 where_positive(Vec4 y, Vec4 x) {
    return {_mm_and_ps(_mm_cmpgt_ps(y.v, _mm_setzero_ps()), x.v)};
  }
  // [sum a, sum b, sum c, sum d], each (x0 + x1) + (x2 + x3).
  friend void hsum4(Vec4 a, Vec4 b, Vec4 c, Vec4 d, float* out) {
    __m128 r0 = a.v, r1 = b.v, r2 = c.v, r3 = d.v;
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);  // r_i = lane i of a, b, c, d
    _mm_storeu_ps(out, _mm_add_ps(_mm_add_ps(r0, r1), _mm_add_ps(r2, r3)));
  }
};
using Vec = Vec4;

#else

// Any other CPU: plain arrays the compiler may vectorize.
struct Vec4 {
  static constexpr int kLanes = 4;
  static constexpr int kRegisters = 16;
  using Mask = int;
  float v[4];

  static Mask mask_below(i64 n) { return static_cast<int>(std::clamp<i64>(n, 0, 4)); }
  static Vec4 zero() { return {}; }
  static Vec4 set1(float x) { return {{x, x, x, x}}; }
  static Vec4 broadcast(const float* p) { return set1(*p); }
  static Vec4 load(const float* p) { return {{p[0], p[1], p[2], p[3]}}; }
  static Vec4 load(const float* p, Mask m) {
    Vec4 r{};
    std::copy(p, p + m, r.v);
    return r;
  }
  static void interleave(Vec4 a, Vec4 b, Vec4& lo, Vec4& hi) {
    for (int i = 0; i < 4; ++i) {
      Vec4& half = i < 2 ? lo : hi;
      half.v[2 * (i % 2)] = a.v[i];
      half.v[2 * (i % 2) + 1] = b.v[i];
    }
  }
  static void deinterleave(Vec4 lo, Vec4 hi, Vec4& even, Vec4& odd) {
    for (int i = 0; i < 4; ++i) {
      const Vec4& half = i < 2 ? lo : hi;
      even.v[i] = half.v[2 * (i % 2)];
      odd.v[i] = half.v[2 * (i % 2) + 1];
    }
  }
  void store(float* p) const { std::copy(v, v + 4, p); }
  void store(float* p, Mask m) const { std::copy(v, v + m, p); }
  friend Vec4 fmadd(Vec4 a, Vec4 b, Vec4 c) {
    Vec4 r;
    for (int i = 0; i < 4; ++i) {
      const float product = a.v[i] * b.v[i];
      r.v[i] = product + c.v[i];
    }
    return r;
  }
  friend Vec4 operator+(Vec4 a, Vec4 b) {
    Vec4 r;
    for (int i = 0; i < 4; ++i) r.v[i] = a.v[i] + b.v[i];
    return r;
  }
  friend Vec4 operator-(Vec4 a, Vec4 b) {
    Vec4 r;
    for (int i = 0; i < 4; ++i) r.v[i] = a.v[i] - b.v[i];
    return r;
  }
  friend Vec4 relu(Vec4 x) {
    Vec4 r;
    for (int i = 0; i < 4; ++i) r.v[i] = x.v[i] < 0.f ? 0.f : x.v[i];
    return r;
  }
  friend Vec4 where_positive(Vec4 y, Vec4 x) {
    Vec4 r;
    for (int i = 0; i < 4; ++i) r.v[i] = y.v[i] > 0.f ? x.v[i] : 0.f;
    return r;
  }
  friend void hsum4(Vec4 a, Vec4 b, Vec4 c, Vec4 d, float* out) {
    const Vec4* rows[4] = {&a, &b, &c, &d};
    for (int i = 0; i < 4; ++i) {
      const float* x = rows[i]->v;
      out[i] = (x[0] + x[1]) + (x[2] + x[3]);
    }
  }
};
using Vec = Vec4;

#endif

static_assert(Vec::kLanes <= kMaxLanes);

/// dst[0, n) = src[0, n), inline: a conv's rows are 8-64 floats, where a call to memcpy costs more
/// than the copy (a tenth of a ResNet's attribution time went to such calls).
inline void copy_row(float* dst, const float* src, i64 n) {
  i64 j = 0;
  for (; j + Vec::kLanes <= n; j += Vec::kLanes) Vec::load(src + j).store(dst + j);
  if (j < n) {
    const auto live = Vec::mask_below(n - j);
    Vec::load(src + j, live).store(dst + j, live);
  }
}

/// dst[2 j] = even[j], dst[2 j + 1] = odd[j] for j < n: two column phases back into one row.
inline void interleave_row(float* dst, const float* even, const float* odd, i64 n) {
  constexpr int kLanes = Vec::kLanes;
  Vec lo, hi;
  i64 j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    Vec::interleave(Vec::load(even + j), Vec::load(odd + j), lo, hi);
    lo.store(dst + 2 * j);
    hi.store(dst + 2 * j + kLanes);
  }
  if (j < n) {  // masked, not through a buffer: a store then a wider load stalls (store forwarding)
    const auto live = Vec::mask_below(n - j);
    Vec::interleave(Vec::load(even + j, live), Vec::load(odd + j, live), lo, hi);
    lo.store(dst + 2 * j, Vec::mask_below(2 * (n - j)));
    hi.store(dst + 2 * j + kLanes, Vec::mask_below(2 * (n - j) - kLanes));
  }
}

/// even[j] = src[2 j], odd[j] = src[2 j + 1] over src[0, n): a row split into its column phases.
/// Writes nothing past either phase's end.
inline void deinterleave_row(const float* src, float* even, float* odd, i64 n) {
  constexpr int kLanes = Vec::kLanes;
  Vec e, o;
  i64 j = 0;
  for (; 2 * (j + kLanes) <= n; j += kLanes) {
    Vec::deinterleave(Vec::load(src + 2 * j), Vec::load(src + 2 * j + kLanes), e, o);
    e.store(even + j);
    o.store(odd + j);
  }
  if (2 * j < n) {  // short rows (8-30 floats): masked loads
    const i64 rest = n - 2 * j;
    Vec::deinterleave(Vec::load(src + 2 * j, Vec::mask_below(rest)),
                      Vec::load(src + 2 * j + kLanes, Vec::mask_below(rest - kLanes)),
                      e,
                      o);
    e.store(even + j, Vec::mask_below((rest + 1) / 2));
    o.store(odd + j, Vec::mask_below(rest / 2));
  }
}

/// dst[j] = src[2 j] for j < n (a stride-2 gather); reads src[0, 2 n - 1) only.
inline void take_even_row(float* dst, const float* src, i64 n) {
  constexpr int kLanes = Vec::kLanes;
  Vec e, o;
  i64 j = 0;
  for (; j + kLanes < n; j += kLanes) {  // strictly: a full step reads src[2 (j + kLanes) - 1]
    Vec::deinterleave(Vec::load(src + 2 * j), Vec::load(src + 2 * j + kLanes), e, o);
    e.store(dst + j);
  }
  if (j < n) {
    const i64 rest = 2 * (n - j) - 1;
    Vec::deinterleave(Vec::load(src + 2 * j, Vec::mask_below(rest)),
                      Vec::load(src + 2 * j + kLanes, Vec::mask_below(rest - kLanes)),
                      e,
                      o);
    e.store(dst + j, Vec::mask_below(n - j));
  }
}

/// dst[2 j] += src[j] for j < n (a stride-2 scatter-add), touching dst[0, 2 n - 1) only: the odd
/// places between get + 0, which leaves every value but -0 as it was (col2im's sums start at +0,
/// and a sum of floats that starts at +0 is never -0).
inline void add_to_even_row(float* dst, const float* src, i64 n) {
  constexpr int kLanes = Vec::kLanes;
  const Vec zero = Vec::zero();
  Vec lo, hi;
  i64 j = 0;
  for (; j + kLanes < n; j += kLanes) {
    Vec::interleave(Vec::load(src + j), zero, lo, hi);
    (Vec::load(dst + 2 * j) + lo).store(dst + 2 * j);
    (Vec::load(dst + 2 * j + kLanes) + hi).store(dst + 2 * j + kLanes);
  }
  if (j < n) {
    const i64 rest = 2 * (n - j) - 1;
    const auto first = Vec::mask_below(rest), second = Vec::mask_below(rest - kLanes);
    Vec::interleave(Vec::load(src + j, Vec::mask_below(n - j)), zero, lo, hi);
    (Vec::load(dst + 2 * j, first) + lo).store(dst + 2 * j, first);
    (Vec::load(dst + 2 * j + kLanes, second) + hi).store(dst + 2 * j + kLanes, second);
  }
}

/// dst[0, n) = relu(src[0, n)): a fused ReLU's crop of the wide conv output.
inline void copy_row_relu(float* dst, const float* src, i64 n) {
  i64 j = 0;
  for (; j + Vec::kLanes <= n; j += Vec::kLanes) relu(Vec::load(src + j)).store(dst + j);
  if (j < n) {
    const auto live = Vec::mask_below(n - j);
    relu(Vec::load(src + j, live)).store(dst + j, live);
  }
}

/// dst[0, n) = y > 0 ? src : 0 over [0, n): a fused ReLU's backward on the way into the wide dy.
inline void copy_row_where_positive(float* dst, const float* src, const float* y, i64 n) {
  i64 j = 0;
  for (; j + Vec::kLanes <= n; j += Vec::kLanes) {
    where_positive(Vec::load(y + j), Vec::load(src + j)).store(dst + j);
  }
  if (j < n) {
    const auto live = Vec::mask_below(n - j);
    where_positive(Vec::load(y + j, live), Vec::load(src + j, live)).store(dst + j, live);
  }
}

/// dst[0, n) = 0, inline (see copy_row).
inline void zero_row(float* dst, i64 n) {
  i64 j = 0;
  for (; j + Vec::kLanes <= n; j += Vec::kLanes) Vec::zero().store(dst + j);
  if (j < n) Vec::zero().store(dst + j, Vec::mask_below(n - j));
}

/// A source row of n floats, zero-padded by `padding` on the left, as its two column phases of
/// `width` floats each: padded column q lands in phase q % 2 (row `phases[q % 2]`) at q / 2, every
/// other place 0. The caller makes width >= (n + padding + 1) / 2.
inline void split_padded_row(
    const float* src, i64 n, i64 padding, i64 width, float* const phases[2]) {
  float* even = phases[padding % 2];     // where source column 0 lands
  float* odd = phases[1 - padding % 2];  // and column 1
  const i64 even_at = padding / 2, odd_at = (padding + 1) / 2;
  const i64 even_end = even_at + (n + 1) / 2, odd_end = odd_at + n / 2;
  zero_row(even, even_at);
  zero_row(odd, odd_at);
  deinterleave_row(src, even + even_at, odd + odd_at, n);
  zero_row(even + even_end, width - even_end);
  zero_row(odd + odd_end, width - odd_end);
}

/// A plane of h rows of n floats, zero-padded by `padding` on every side, as its four phases (row
/// and column parity): phase (a, b) at phases + (2 a + b) * phase_stride, `rows` rows of `width`
/// floats, padded row 2 i + a in its row i. With `positive` (the plane's shape), the plane only
/// where that is > 0, through `row` (n floats). Reads the plane's rows front to back.
inline void split_padded_plane(const float* src,
                               const float* positive,
                               float* row,
                               i64 h,
                               i64 n,
                               i64 padding,
                               i64 rows,
                               i64 width,
                               i64 phase_stride,
                               float* phases) {
  for (i64 i = 0; i < rows; ++i) {
    for (int a = 0; a < 2; ++a) {
      float* const row_phases[2] = {phases + 2 * a * phase_stride + i * width,
                                    phases + (2 * a + 1) * phase_stride + i * width};
      const i64 y = 2 * i + a - padding;  // the source row of this phase row
      if (y < 0 || y >= h) {
        zero_row(row_phases[0], width);
        zero_row(row_phases[1], width);
        continue;
      }
      const float* from = src + y * n;
      if (positive != nullptr) {
        copy_row_where_positive(row, from, positive + y * n, n);
        from = row;
      }
      split_padded_row(from, n, padding, width, row_phases);
    }
  }
}

}  // namespace gradlens::cpu::simd
