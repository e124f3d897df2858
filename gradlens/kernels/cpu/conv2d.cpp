// conv2d (cross-correlation, zero padding, NCHW, weight [K, C, R, S]): y = w (*) x + b,
// dx = col2im(w^T [CRS, K] * dy [K, P]), dw = sum_n dy_n [K, P] * col_n^T [P, CRS].
// Stride 1 uses the direct kernels of microkernels.h, where dx is usually one correlation of the
// zero-padded dy with the flipped weights instead (FullCorrelation). Larger strides: the forward
// over the input split into phases (DirectPlan) when the kernel covers them all, and dx alone of a
// stride-2 conv as one correlation per phase of dx (PhaseCorrelations); the rest (1x1 strided,
// training's dw) im2col + Eigen's GEMM per image. conv2d_relu_pool shares all of it: its 2x2 pool
// reads the output rows as they leave the kernels, and its backward puts the pooled dy straight
// into the padded dy of dx's correlation. Compiled once per ISA (kernels/CMakeLists.txt),
// Eigen included. Images are split over threads; per-chunk dw partials are summed in chunk order.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "gradlens/kernels/cpu/common/scratch.h"
#include "gradlens/kernels/cpu/common/thread_pool.h"
#include "gradlens/kernels/cpu/conv2d_winograd.h"
#include "gradlens/kernels/cpu/cpu_backend.h"
#include "gradlens/kernels/cpu/eigen_types.h"
#include "gradlens/kernels/cpu/microkernels.h"
#include "gradlens/kernels/cpu/pool_window.h"
#include "gradlens/kernels/cpu/simd.h"

namespace gradlens::cpu::GRADLENS_CPU_ISA {
namespace {

// Output columns [lo, hi) whose input column ow * stride - padding + s lies inside [0, w).
struct ColumnRange {
  i64 lo, hi;
};

ColumnRange valid_columns(const Conv2dParams& p, i64 s) {
  const i64 first = p.padding - s;  // ow * stride >= first
  const i64 lo = first > 0 ? (first + p.stride - 1) / p.stride : 0;
  const i64 last = p.w - 1 + p.padding - s;  // ow * stride <= last
  const i64 hi = last >= 0 ? std::min(p.ow, last / p.stride + 1) : 0;
  return {std::min(lo, p.ow), std::max(hi, std::min(lo, p.ow))};
}

// x [C, H, W] of one image -> col [C*R*S, OH*OW]
void im2col(const Conv2dParams& p, const float* x, float* col) {
  const i64 plane = p.oh * p.ow;
  for (i64 c = 0; c < p.c; ++c) {
    for (i64 r = 0; r < p.r; ++r) {
      for (i64 s = 0; s < p.s; ++s) {
        float* row = col + ((c * p.r + r) * p.s + s) * plane;
        const ColumnRange cols = valid_columns(p, s);
        for (i64 oh = 0; oh < p.oh; ++oh) {
          float* out = row + oh * p.ow;
          const i64 ih = oh * p.stride - p.padding + r;
          if (ih < 0 || ih >= p.h) {
            simd::zero_row(out, p.ow);
            continue;
          }
          const float* in = x + (c * p.h + ih) * p.w + s - p.padding;
          simd::zero_row(out, cols.lo);
          if (p.stride == 1) {
            simd::copy_row(out + cols.lo, in + cols.lo, cols.hi - cols.lo);
          } else if (p.stride == 2) {
            simd::take_even_row(out + cols.lo, in + 2 * cols.lo, cols.hi - cols.lo);
          } else {
            for (i64 ow = cols.lo; ow < cols.hi; ++ow) out[ow] = in[ow * p.stride];
          }
          simd::zero_row(out + cols.hi, p.ow - cols.hi);
        }
      }
    }
  }
}

// col [C*R*S, OH*OW] with rows `ld` apart -> x [C, H, W] of one image, added (x starts zeroed)
void col2im(const Conv2dParams& p, const float* col, i64 ld, float* x) {
  for (i64 c = 0; c < p.c; ++c) {
    for (i64 r = 0; r < p.r; ++r) {
      for (i64 s = 0; s < p.s; ++s) {
        const float* row = col + ((c * p.r + r) * p.s + s) * ld;
        const ColumnRange cols = valid_columns(p, s);
        for (i64 oh = 0; oh < p.oh; ++oh) {
          const i64 ih = oh * p.stride - p.padding + r;
          if (ih < 0 || ih >= p.h) continue;
          const float* in = row + oh * p.ow;
          float* out = x + (c * p.h + ih) * p.w + s - p.padding;
          if (p.stride == 1) {
            for (i64 ow = cols.lo; ow < cols.hi; ++ow) out[ow] += in[ow];
          } else if (p.stride == 2) {
            simd::add_to_even_row(out + 2 * cols.lo, in + cols.lo, cols.hi - cols.lo);
          } else {
            for (i64 ow = cols.lo; ow < cols.hi; ++ow) out[ow * p.stride] += in[ow];
          }
        }
      }
    }
  }
}

// A 1x1, stride-1, unpadded conv reads the image itself as its col matrix.
bool is_pointwise(const Conv2dParams& p) {
  return p.r == 1 && p.s == 1 && p.stride == 1 && p.padding == 0;
}

// x [c, h, w] -> out [c, hp, wp] with the image at row ph, column pw, zeros around it, then
// `tail` zeros. With `positive` (a fused ReLU's output, x's shape), x only where it is > 0.
void pad_planes(const float* x,
                const float* positive,
                i64 c,
                i64 h,
                i64 w,
                i64 ph,
                i64 pw,
                i64 hp,
                i64 wp,
                i64 tail,
                float* out) {
  const auto copy = [positive, x](float* dst, i64 at, i64 n) {
    if (positive != nullptr) {
      simd::copy_row_where_positive(dst, x + at, positive + at, n);
    } else {
      simd::copy_row(dst, x + at, n);
    }
  };
  for (i64 ci = 0; ci < c; ++ci) {
    float* plane = out + ci * hp * wp;
    if (ph == 0 && pw == 0 && wp == w) {
      copy(plane, ci * h * w, h * w);
      std::fill(plane + h * w, plane + hp * wp, 0.f);
      continue;
    }
    simd::zero_row(plane, ph * wp);
    for (i64 i = 0; i < h; ++i) {
      float* row = plane + (ph + i) * wp;
      simd::zero_row(row, pw);
      copy(row + pw, (ci * h + i) * w, w);
      simd::zero_row(row + pw + w, wp - pw - w);
    }
    simd::zero_row(plane + (ph + h) * wp, (hp - ph - h) * wp);
  }
  std::fill(out + c * hp * wp, out + c * hp * wp + tail, 0.f);
}

// Zeros before each dcol row that add_shifted_rows reads (s + kMaxLanes, rounded up).
i64 dcol_front(const Conv2dParams& p) {
  return (p.s + 2 * simd::kMaxLanes - 1) / simd::kMaxLanes * simd::kMaxLanes;
}

// dx's rows go in bands, each with only the kernel rows that meet dy in one of its rows: near the
// top and bottom edges the others read dy's zero padding rows (the tutorial's conv2, 14 rows of 5
// kernel rows, has 20 of its 70 row-taps on zeros). Skipped taps only ever added +0 to sums that
// start at +0, so the bits are the same.
struct FullCorrelationBand {
  i64 y0, y1;             // dx rows
  i64 r0, r1;             // kernel rows, of the flipped kernel: dx row y reads padded dy row y + r
  const i64* offsets;     // [K * (r1 - r0) * S] taps from padded dy row y0 + r0
  const float* packed_w;  // flipped sub-kernel [C, K, r1 - r0, S], packed
};

// dx as the correlation of dy, zero-padded by R - 1 - padding (S - 1 - padding) on each side, with
// the weights flipped and transposed, wflip[c, k, r, s] = w[k, c, R-1-r, S-1-s]: C output rows,
// K*R*S taps. It runs at the forward's speed where the dcol path (w^T * dy, then col2im) has few
// taps per stored element: the tutorial's conv1 (K = 6) spent more time storing and re-adding
// its 75 dcol rows than multiplying.
struct FullCorrelation {
  bool use = false;
  i64 pad_h = 0, pad_w = 0;  // of dy
  i64 hp = 0, wp = 0, plane = 0;
  i64 count = 0, ld = 0;  // wide positions h * wp of dx; row stride of the wide dx
  std::vector<FullCorrelationBand> bands;
};

// Bands of dx rows [y0, y1) at the least estimated cost (dynamic programming over the h rows): a
// band runs its kernel rows over all its positions in vectors, plus about two vectors for its
// masked tail tile (measured, 64 images, dx time: the tutorial's conv2 1.17x faster in 3 bands;
// its conv1 in 3 bands as fast as in one, and 1.1x slower in 7 with half a vector).
std::vector<FullCorrelationBand> choose_bands(const Conv2dParams& p, const FullCorrelation& full) {
  const auto rows_of = [&](i64 y0, i64 y1) {  // kernel rows meeting dy rows for dx rows [y0, y1)
    const i64 r0 = std::max<i64>(0, full.pad_h - (y1 - 1));
    const i64 r1 = std::min<i64>(p.r, full.pad_h + p.oh - y0);
    return std::pair{r0, std::max(r0, r1)};
  };
  const auto cost = [&](i64 y0, i64 y1) {
    const auto [r0, r1] = rows_of(y0, y1);
    const double vectors = static_cast<double>((y1 - y0) * full.wp) / simd::Vec::kLanes;
    return static_cast<double>(r1 - r0) * (std::ceil(vectors) + 2.0);
  };
  std::vector<double> best(static_cast<std::size_t>(p.h + 1), 0.0);
  std::vector<i64> start(static_cast<std::size_t>(p.h + 1), 0);
  for (i64 y1 = 1; y1 <= p.h; ++y1) {
    best[y1] = std::numeric_limits<double>::infinity();
    for (i64 y0 = 0; y0 < y1; ++y0) {
      const double c = best[y0] + cost(y0, y1);
      if (c < best[y1]) {
        best[y1] = c;
        start[y1] = y0;
      }
    }
  }
  std::vector<FullCorrelationBand> bands;
  for (i64 y1 = p.h; y1 > 0; y1 = start[y1]) {
    const auto [r0, r1] = rows_of(start[y1], y1);
    bands.insert(bands.begin(), {start[y1], y1, r0, r1, nullptr, nullptr});
  }
  return bands;
}

// Everything the direct kernels share across the images of one call, built by the calling thread.
// A stride-t conv runs as a stride-1 one over the padded input split into t x t phases,
// [C, t, t, hp, wp] with [c, a, b, i, j] = padded x[c, t i + a, t j + b]: tap (c, r, s) of output
// (oh, ow) reads phase (r % t, s % t) at (oh + r / t, ow + s / t), so each tap is again one
// contiguous run over the wide positions oh * wp + ow (t = 1: the padded input itself).
struct DirectPlan {
  i64 hp, wp, plane;       // a plane of the padded input (of a phase when strided)
  i64 count, ld;           // wide positions oh * wp; row stride of wide buffers
  const i64* offsets;      // [C*R*S] taps into the padded input (its phases)
  const float* packed_w;   // w [K, CRS] for the forward, micro::pack_weights layout
  const i64* dy_rows;      // [K] = k * ld: dy rows of the wide dy, as 1x1 taps
  const float* packed_wt;  // w^T [CRS, K] for dx
  FullCorrelation full;    // dx as one correlation of the padded dy, when that is cheaper
};

// The kernel rows rho, rho + step, ... (ra of them) and columns sigma, sigma + step, ... (sb) of w
// [K, C, R, S], flipped and transposed: wf [C, K, ra, sb] with wf[c, k, u, v] = w[k, c, step (ra -
// 1 - u) + rho, step (sb - 1 - v) + sigma]. dx's correlations read dy through it.
void flip_kernel(const Conv2dParams& p,
                 const float* w,
                 i64 step,
                 i64 rho,
                 i64 sigma,
                 i64 ra,
                 i64 sb,
                 float* wf) {
  for (i64 c = 0; c < p.c; ++c) {
    for (i64 k = 0; k < p.k; ++k) {
      for (i64 u = 0; u < ra; ++u) {
        for (i64 v = 0; v < sb; ++v) {
          const i64 r = step * (ra - 1 - u) + rho, s = step * (sb - 1 - v) + sigma;
          wf[((c * p.k + k) * ra + u) * sb + v] = w[((k * p.c + c) * p.r + r) * p.s + s];
        }
      }
    }
  }
}

// Whether dx is cheaper as a full correlation: counted in multiply-adds, each dcol element also
// costing about sixteen more (its store, zeroing, then a load and an add in col2im: measured, the
// tutorial's conv2, K = 16, runs about 5 % faster full though it multiplies 1.8x as much). The
// padding must not exceed R - 1 (a wider one would crop dy).
FullCorrelation make_full_correlation(const Conv2dParams& p, const float* w, i64 dcol_count) {
  FullCorrelation full;
  full.pad_h = p.r - 1 - p.padding;
  full.pad_w = p.s - 1 - p.padding;
  if (full.pad_h < 0 || full.pad_w < 0 || p.stride != 1) return full;
  full.hp = p.oh + 2 * full.pad_h;
  // Rows share their zero padding: a row's right pad is the next row's left pad (rows are laid out
  // [pad_w zeros, ow values]), so the wide rows are wp = W + padding positions, not W + 2 pad_w:
  // no discarded positions at all when padding = 0 (the tutorial's conv2: 14 against 18).
  full.wp = p.ow + full.pad_w;
  full.plane = full.hp * full.wp;
  full.count = p.h * full.wp;
  const i64 crs = p.c * p.r * p.s;
  const i64 full_cost = p.c * full.count * p.k * p.r * p.s;
  const i64 dcol_cost = crs * dcol_count * (p.k + 16);
  if (full_cost >= dcol_cost) return full;
  full.use = true;
  full.ld = micro::output_stride(full.count);
  full.bands = choose_bands(p, full);
  i64 all_taps = 0;
  for (const FullCorrelationBand& band : full.bands) all_taps += p.k * (band.r1 - band.r0) * p.s;
  thread_local ScratchBuffer offsets, flipped, band_scratch, packed;
  i64* taps = offsets.get<i64>(all_taps);
  float* packed_w = packed.get(p.c * all_taps);
  float* wf = flipped.get(p.c * p.k * p.r * p.s);
  flip_kernel(p, w, 1, 0, 0, p.r, p.s, wf);
  float* sub = band_scratch.get(p.c * p.k * p.r * p.s);
  for (FullCorrelationBand& band : full.bands) {
    const i64 rows = band.r1 - band.r0, band_taps = p.k * rows * p.s;
    micro::make_offsets(p.k, rows, p.s, full.plane, full.wp, taps);
    for (i64 ck = 0; ck < p.c * p.k; ++ck) {  // wf[c, k, r0:r1, :]
      std::copy_n(wf + (ck * p.r + band.r0) * p.s, rows * p.s, sub + ck * rows * p.s);
    }
    micro::pack_weights(sub, p.c, band_taps, packed_w);
    band.offsets = taps;
    band.packed_w = packed_w;
    taps += band_taps;
    packed_w += p.c * band_taps;
  }
  return full;
}

DirectPlan make_plan(const Conv2dParams& p, const float* w, bool forward_weights, bool dx_weights) {
  thread_local ScratchBuffer offsets, packed, dy_rows, transposed, packed_t;
  DirectPlan plan{};
  const i64 crs = p.c * p.r * p.s, t = p.stride;
  plan.hp = (p.h + 2 * p.padding + t - 1) / t;
  plan.wp = (p.w + 2 * p.padding + t - 1) / t;
  plan.plane = plan.hp * plan.wp;
  plan.count = p.oh * plan.wp;
  // Room after each row for the zeros add_shifted_rows reads on both sides of it.
  plan.ld = micro::output_stride(plan.count + p.s + simd::kMaxLanes) + dcol_front(p);
  i64* taps = offsets.get<i64>(crs);
  for (i64 c = 0; c < p.c; ++c) {
    for (i64 r = 0; r < p.r; ++r) {
      for (i64 s = 0; s < p.s; ++s) {
        taps[(c * p.r + r) * p.s + s] =
            ((c * t + r % t) * t + s % t) * plan.plane + r / t * plan.wp + s / t;
      }
    }
  }
  plan.offsets = taps;
  if (forward_weights) {
    float* packed_w = packed.get(p.k * crs);
    micro::pack_weights(w, p.k, crs, packed_w);
    plan.packed_w = packed_w;
  }
  if (dx_weights) plan.full = make_full_correlation(p, w, plan.count);
  if (dx_weights && !plan.full.use) {
    i64* rows = dy_rows.get<i64>(p.k);
    for (i64 k = 0; k < p.k; ++k) rows[k] = k * plan.ld;
    plan.dy_rows = rows;
    float* wt = transposed.get(crs * p.k);
    for (i64 k = 0; k < p.k; ++k) {
      for (i64 i = 0; i < crs; ++i) wt[i * p.k + k] = w[k * crs + i];
    }
    float* packed_wt = packed_t.get(crs * p.k);
    micro::pack_weights(wt, crs, p.k, packed_wt);
    plan.packed_wt = packed_wt;
  }
  return plan;
}

// x [C, H, W] -> its padded phases [C, t, t, hp, wp] (DirectPlan), then `tail` zeros.
void split_phases(
    const Conv2dParams& p, const DirectPlan& plan, i64 tail, const float* x, float* out) {
  const i64 t = p.stride;
  // Stride 2: each row into its two column phases as vectors (every column fits: wp = ceil((w + 2
  // padding) / 2)); a scalar stride-2 gather took a fifth to a third of ResNet8's strided forwards.
  if (t == 2) {
    for (i64 c = 0; c < p.c; ++c) {
      simd::split_padded_plane(x + c * p.h * p.w,
                               nullptr,
                               nullptr,
                               p.h,
                               p.w,
                               p.padding,
                               plan.hp,
                               plan.wp,
                               plan.plane,
                               out + c * 4 * plan.plane);
    }
    simd::zero_row(out + p.c * 4 * plan.plane, tail);
    return;
  }
  for (i64 c = 0; c < p.c; ++c) {
    for (i64 a = 0; a < t; ++a) {
      for (i64 b = 0; b < t; ++b) {
        float* phase = out + ((c * t + a) * t + b) * plan.plane;
        // Columns j whose input column t j + b - padding lies in [0, w).
        const i64 lo = std::min(plan.wp, std::max<i64>(0, (p.padding - b + t - 1) / t));
        const i64 hi = std::max(lo, std::min(plan.wp, (p.w - 1 + p.padding - b) / t + 1));
        for (i64 i = 0; i < plan.hp; ++i) {
          float* row = phase + i * plan.wp;
          const i64 ih = t * i + a - p.padding;
          if (ih < 0 || ih >= p.h) {
            simd::zero_row(row, plan.wp);
            continue;
          }
          const float* in = x + (c * p.h + ih) * p.w + b - p.padding;
          simd::zero_row(row, lo);
          for (i64 j = lo; j < hi; ++j) row[j] = in[t * j];
          simd::zero_row(row + hi, plan.wp - hi);
        }
      }
    }
  }
  simd::zero_row(out + p.c * t * t * plan.plane, tail);
}

// Padded copy of one image (its phases when strided), the input of both the forward and the
// weight-gradient kernels.
float* padded_image(const Conv2dParams& p, const DirectPlan& plan, const float* image) {
  thread_local ScratchBuffer scratch;
  const i64 tail = micro::input_tail(p.s);
  float* xp = scratch.get(p.c * p.stride * p.stride * plan.plane + tail);
  if (p.stride == 1) {
    pad_planes(image, nullptr, p.c, p.h, p.w, p.padding, p.padding, plan.hp, plan.wp, tail, xp);
  } else {
    split_phases(p, plan, tail, image, xp);
  }
  return xp;
}

// conv2d_relu_pool's backward prologue: the pooled dy back at each window's maximum, where the
// ReLU passed it (the pooled y, that position's output, > 0), into out's planes (`plane_stride`
// apart, already zeroed) at places[plane index] (null: at the plane index itself). The table,
// built once a call, saves a division per value (half as long again in the tutorial's NoiseTunnel).
// 0 + dy, as max_pool2d's backward adds into zeros (a -0 becomes +0); masks, not a branch, pick
// (half the windows pass).
void unpool_masked(const Conv2dParams& p,
                   const float* y,
                   const float* dy,
                   const std::int32_t* idx,
                   const std::int32_t* places,
                   i64 plane_stride,
                   float* out) {
  const i64 pooled = (p.oh / 2) * (p.ow / 2);
  auto* dst = reinterpret_cast<std::uint32_t*>(out);
  for (i64 k = 0; k < p.k; ++k) {
    const std::int32_t* at = idx + k * pooled;
    const float* yk = y + k * pooled;
    const float* dyk = dy + k * pooled;
    std::uint32_t* base = dst + k * plane_stride;
    for (i64 i = 0; i < pooled; ++i) {
      base[places != nullptr ? places[at[i]] : at[i]] =
          std::bit_cast<std::uint32_t>(0.f + dyk[i]) & (yk[i] > 0.f ? ~0u : 0u);
    }
  }
}

// The fused ReLU, if any, is applied as the wide rows are cropped. An unpadded image is its own
// padded copy but for the tail: correlate reads up to s - 1 floats past it (for discarded wide
// positions only), which lie in the next image when there is one, so only the last is copied.
void forward_direct(const Conv2dParams& p,
                    const DirectPlan& plan,
                    const float* image,
                    bool next_image_follows,
                    const float* b,
                    float* y,
                    std::int32_t* pool_indices) {
  thread_local ScratchBuffer scratch;
  const bool in_place = p.padding == 0 && p.stride == 1 && next_image_follows;
  const float* xp = in_place ? image : padded_image(p, plan, image);
  float* wide = scratch.get(p.k * plan.ld);
  micro::correlate(
      xp, plan.offsets, p.c * p.r * p.s, plan.packed_w, b, p.k, plan.count, plan.ld, wide);
  if (pool_indices != nullptr) {  // conv2d_relu_pool: y is the pooled output, straight from here
    max_pool_2x2</*Relu=*/true>(wide, p.k, plan.ld, plan.wp, p.oh, p.ow, y, pool_indices);
    return;
  }
  for (i64 k = 0; k < p.k; ++k) {
    for (i64 oh = 0; oh < p.oh; ++oh) {
      float* dst = y + (k * p.oh + oh) * p.ow;
      const float* src = wide + k * plan.ld + oh * plan.wp;
      if (p.relu) {
        simd::copy_row_relu(dst, src, p.ow);
      } else {
        simd::copy_row(dst, src, p.ow);
      }
    }
  }
}

// dy [K, OH, OW] on the wide grid [K, ld] (masked by a fused ReLU's output, when given): every
// discarded position is exactly 0, so it adds nothing to dw and its dcol column is 0 for dx. Tail:
// the correlate overrun past the last row.
float* wide_grad_out(const Conv2dParams& p,
                     const DirectPlan& plan,
                     const float* grad_out,
                     const float* relu_out) {
  thread_local ScratchBuffer scratch;
  const i64 size = p.k * plan.ld + micro::input_tail(1);
  float* dyw = scratch.get(size);
  // Each wide row: ow values and wp - ow zeros per output row, then zeros up to ld; then the tail.
  for (i64 k = 0; k < p.k; ++k) {
    float* row = dyw + k * plan.ld;
    for (i64 oh = 0; oh < p.oh; ++oh) {
      const i64 at = (k * p.oh + oh) * p.ow;
      if (relu_out != nullptr) {
        simd::copy_row_where_positive(row + oh * plan.wp, grad_out + at, relu_out + at, p.ow);
      } else {
        simd::copy_row(row + oh * plan.wp, grad_out + at, p.ow);
      }
      simd::zero_row(row + oh * plan.wp + p.ow, plan.wp - p.ow);
    }
    simd::zero_row(row + plan.count, plan.ld - plan.count);
  }
  simd::zero_row(dyw + p.k * plan.ld, size - p.k * plan.ld);
  return dyw;
}

// dx_n: dcol [CRS, count] = w^T * dy_wide; on the wide grid col2im is, per (c, r), the S rows of
// dcol added one column apart into the padded dx plane; then the crop. Stride 1 only.
void input_grad_direct(const Conv2dParams& p,
                       const DirectPlan& plan,
                       const float* dyw,
                       float* grad_image) {
  thread_local ScratchBuffer dcol_scratch, padded_scratch;
  const i64 crs = p.c * p.r * p.s, front = dcol_front(p), overrun = p.s + simd::kMaxLanes;
  float* dcol = dcol_scratch.get(front + crs * plan.ld) + front;
  micro::correlate(dyw, plan.dy_rows, p.k, plan.packed_wt, nullptr, crs, plan.count, plan.ld, dcol);
  // add_shifted_rows reads s + kMaxLanes zeros before and after each row (before row i is the
  // end of row i - 1, or the front pad).
  std::fill(dcol - front, dcol, 0.f);
  for (i64 i = 0; i < crs; ++i) {
    float* row = dcol + i * plan.ld;
    simd::zero_row(row + plan.count, overrun);
    simd::zero_row(row + plan.ld - front, front);
  }
  const i64 size = p.c * plan.plane + overrun;
  float* dxp = padded_scratch.get(size);
  std::fill(dxp, dxp + size, 0.f);
  for (i64 c = 0; c < p.c; ++c) {
    for (i64 r = 0; r < p.r; ++r) {
      micro::add_shifted_rows(dcol + (c * p.r + r) * p.s * plan.ld,
                              plan.ld,
                              p.s,
                              plan.count,
                              dxp + c * plan.plane + r * plan.wp);
    }
  }
  for (i64 c = 0; c < p.c; ++c) {
    for (i64 h = 0; h < p.h; ++h) {
      simd::copy_row(grad_image + (c * p.h + h) * p.w,
                     dxp + c * plan.plane + (h + p.padding) * plan.wp + p.padding,
                     p.w);
    }
  }
}

// dx_n from dy padded for FullCorrelation: the bands' correlations, then the crop (nothing to crop
// when the conv is unpadded).
void correlate_full(const Conv2dParams& p,
                    const FullCorrelation& full,
                    const float* dyp,
                    float* grad_image) {
  thread_local ScratchBuffer wide_scratch;
  // No discarded positions (padding 0): the wide rows are dx itself.
  const bool in_place = full.wp == p.w;
  float* wide = in_place ? grad_image : wide_scratch.get(p.c * full.ld);
  const i64 ld = in_place ? full.count : full.ld;
  for (const FullCorrelationBand& band : full.bands) {
    micro::correlate(dyp + (band.y0 + band.r0) * full.wp,
                     band.offsets,
                     p.k * (band.r1 - band.r0) * p.s,
                     band.packed_w,
                     nullptr,
                     p.c,
                     (band.y1 - band.y0) * full.wp,
                     ld,
                     wide + band.y0 * full.wp);
  }
  if (in_place) return;
  for (i64 c = 0; c < p.c; ++c) {
    for (i64 h = 0; h < p.h; ++h) {
      simd::copy_row(grad_image + (c * p.h + h) * p.w, wide + c * full.ld + h * full.wp, p.w);
    }
  }
}

// dx_n by FullCorrelation: pad dy (masked by a fused ReLU's output, when given), correlate, crop
// the wide rows (nothing to crop when the conv is unpadded).
void input_grad_full(const Conv2dParams& p,
                     const FullCorrelation& full,
                     const float* grad_out,
                     const float* relu_out,
                     float* grad_image) {
  thread_local ScratchBuffer padded_scratch;
  const i64 tail = micro::input_tail(p.s);
  float* dyp = padded_scratch.get(p.k * full.plane + tail);
  pad_planes(
      grad_out, relu_out, p.k, p.oh, p.ow, full.pad_h, full.pad_w, full.hp, full.wp, tail, dyp);
  correlate_full(p, full, dyp, grad_image);
}

// The same from conv2d_relu_pool's pooled y, dy and indices: dy goes straight into the padded
// planes, with no dense dy or ReLU mask pass in between.
void input_grad_full_unpool(const Conv2dParams& p,
                            const FullCorrelation& full,
                            const float* y,
                            const float* dy,
                            const std::int32_t* indices,
                            const std::int32_t* places,
                            float* grad_image) {
  thread_local ScratchBuffer padded_scratch;
  const i64 size = p.k * full.plane + micro::input_tail(p.s);
  float* dyp = padded_scratch.get(size);
  simd::zero_row(dyp, size);
  unpool_masked(p, y, dy, indices, places, full.plane, dyp);
  correlate_full(p, full, dyp, grad_image);
}

// dx of a stride-2 conv as four full correlations, one per phase of dx (rows h = 2 i + a, columns
// 2 j + b): dx row h takes dy row oh through kernel row r = h + padding - 2 oh, so phase a takes
// the rows r of one parity, rho = (a + padding) % 2, r = 2 u + rho, from dy row i + e - u (e =
// (a + padding) / 2). Flipped, that sub-kernel (ra rows) correlates over dy padded by ra - 1 - e
// rows on top; the columns alike. The same multiply-adds as w^T * dy and col2im, with neither the
// column buffer nor its scalar strided adds. Shapes whose dy would need cropping, not padding, keep
// the column path.
struct PhaseCorrelations {
  struct Phase {
    i64 rows, cols;         // of dx in this phase
    i64 ra, sb;             // sub-kernel
    i64 top, left, hp, wp;  // dy's padding and padded plane
    const i64* offsets;     // [K * ra * sb] taps into the padded dy
    const float* packed_w;  // flipped sub-kernel [C, K * ra * sb], packed
  };
  bool use = false;
  Phase phases[4] = {};
};

PhaseCorrelations make_phase_correlations(const Conv2dParams& p, const float* w) {
  PhaseCorrelations pc;
  if (p.stride != 2 || p.r < 2 || p.s < 2 || p.h < 2 || p.w < 2) return pc;
  thread_local ScratchBuffer offsets_scratch, flipped_scratch, packed_scratch;
  i64* offsets = offsets_scratch.get<i64>(p.k * p.r * p.s);
  float* flipped = flipped_scratch.get(p.c * p.k * p.r * p.s);
  float* packed = packed_scratch.get(p.c * p.k * p.r * p.s);
  for (i64 a = 0; a < 2; ++a) {
    for (i64 b = 0; b < 2; ++b) {
      PhaseCorrelations::Phase& ph = pc.phases[a * 2 + b];
      const i64 rho = (a + p.padding) % 2, e = (a + p.padding) / 2;
      const i64 sigma = (b + p.padding) % 2, f = (b + p.padding) / 2;
      ph.rows = (p.h - a + 1) / 2;
      ph.cols = (p.w - b + 1) / 2;
      ph.ra = (p.r - rho + 1) / 2;
      ph.sb = (p.s - sigma + 1) / 2;
      ph.top = ph.ra - 1 - e;
      ph.left = ph.sb - 1 - f;
      ph.hp = ph.rows + ph.ra - 1;
      ph.wp = ph.cols + ph.sb - 1;
      if (ph.top < 0 || ph.left < 0 || ph.top + p.oh > ph.hp || ph.left + p.ow > ph.wp) return pc;
      const i64 taps = p.k * ph.ra * ph.sb;
      micro::make_offsets(p.k, ph.ra, ph.sb, ph.hp * ph.wp, ph.wp, offsets);
      flip_kernel(p, w, 2, rho, sigma, ph.ra, ph.sb, flipped);
      micro::pack_weights(flipped, p.c, taps, packed);
      ph.offsets = offsets;
      ph.packed_w = packed;
      offsets += taps;
      packed += p.c * taps;
    }
  }
  pc.use = true;
  return pc;
}

// dx_n by PhaseCorrelations (dy masked by a fused ReLU's output, when given): each phase into wide
// rows of its own, then each dx row as its two column phases interleaved (stride-2 scalar stores
// of one phase at a time were a tenth of a strided conv's dx).
void input_grad_phases(const Conv2dParams& p,
                       const PhaseCorrelations& pc,
                       const float* grad_out,
                       const float* relu_out,
                       float* grad_image) {
  thread_local ScratchBuffer padded_scratch, wide_scratch;
  i64 ld[4], at[4], total = 0;
  for (int q = 0; q < 4; ++q) {
    const PhaseCorrelations::Phase& ph = pc.phases[q];
    ld[q] = micro::output_stride(ph.rows * ph.wp);
    at[q] = total;
    total += p.c * ld[q];
  }
  float* wide = wide_scratch.get(total);
  for (int q = 0; q < 4; ++q) {
    const PhaseCorrelations::Phase& ph = pc.phases[q];
    const i64 plane = ph.hp * ph.wp, tail = micro::input_tail(ph.sb);
    float* dyp = padded_scratch.get(p.k * plane + tail);
    pad_planes(grad_out, relu_out, p.k, p.oh, p.ow, ph.top, ph.left, ph.hp, ph.wp, tail, dyp);
    micro::correlate(dyp,
                     ph.offsets,
                     p.k * ph.ra * ph.sb,
                     ph.packed_w,
                     nullptr,
                     p.c,
                     ph.rows * ph.wp,
                     ld[q],
                     wide + at[q]);
  }
  const i64 pairs = p.w / 2;  // phase b = 1 has w / 2 columns, phase b = 0 one more when w is odd
  for (i64 c = 0; c < p.c; ++c) {
    for (i64 h = 0; h < p.h; ++h) {
      const i64 a = h % 2, i = h / 2;
      const float* even = wide + at[2 * a] + c * ld[2 * a] + i * pc.phases[2 * a].wp;
      const float* odd = wide + at[2 * a + 1] + c * ld[2 * a + 1] + i * pc.phases[2 * a + 1].wp;
      float* dst = grad_image + (c * p.h + h) * p.w;
      simd::interleave_row(dst, even, odd, pairs);
      if (p.w % 2 != 0) dst[p.w - 1] = even[pairs];
    }
  }
}

// The forward of strided convs too when their kernel covers every phase (a 1x1 stride-2 conv reads
// one phase in four: im2col copies just that one). The backward's direct plan (the wide dy, dw,
// dcol or FullCorrelation) is stride 1 only: a stride-2 dx alone goes by PhaseCorrelations, the
// rest by im2col + GEMM (dx through the phases' column buffer measured 1.5x slower than that).
bool use_direct_forward(const Conv2dParams& p) {
  return p.stride == 1 || (p.r >= p.stride && p.s >= p.stride);
}
bool use_direct_backward(const Conv2dParams& p) { return p.stride == 1; }

// The fused ReLU's forward epilogue on one image's output, still in cache: x < 0 ? 0 : x, so NaN
// propagates as in the separate relu.
void relu_in_place(float* y, i64 n) {
  for (i64 i = 0; i < n; ++i) y[i] = y[i] < 0.f ? 0.f : y[i];
}

// The fused ReLU's backward prologue on one image: dy where the output is positive, else 0 (the
// separate relu's rule, as y > 0 exactly where its input is).
const float* relu_masked(const float* y, const float* dy, i64 n, float* out) {
  for (i64 i = 0; i < n; ++i) out[i] = y[i] > 0.f ? dy[i] : 0.f;
  return out;
}

// conv2d_relu_pool's 2x2 pool of one image's conv output [K, OH, OW], already ReLU'd.
void pool_image(const Conv2dParams& p, const float* conv_out, float* y, std::int32_t* indices) {
  max_pool_2x2</*Relu=*/false>(conv_out, p.k, p.oh * p.ow, p.ow, p.oh, p.ow, y, indices);
}

// conv2d_forward, and with pool_indices conv2d_relu_pool_forward (y then the pooled output).
void conv2d_forward_impl(const Conv2dParams& p,
                         const float* x,
                         const float* w,
                         const float* b,
                         float* y,
                         std::int32_t* pool_indices) {
  const i64 crs = p.c * p.r * p.s, plane = p.oh * p.ow;
  if (p.n == 0 || p.k == 0 || plane == 0) return;
  const i64 y_size = pool_indices != nullptr ? p.k * (p.oh / 2) * (p.ow / 2) : p.k * plane;
  if (winograd_applies(p, /*input_grad=*/false)) {
    if (pool_indices == nullptr) {
      winograd_forward(p, x, w, b, y);
      return;
    }
    // Fused with the pool: Winograd's conv output a chunk of images at a time, then the pool, so
    // the fused op stays the separate ops bit for bit.
    thread_pool().parallel_for(0, p.n, 1, [&](i64 lo, i64 hi) {
      thread_local ScratchBuffer conv_scratch;
      Conv2dParams chunk = p;
      chunk.n = hi - lo;
      float* conv_out = conv_scratch.get(chunk.n * p.k * plane);
      winograd_forward(chunk, x + lo * p.c * p.h * p.w, w, b, conv_out);
      for (i64 img = lo; img < hi; ++img) {
        pool_image(
            p, conv_out + (img - lo) * p.k * plane, y + img * y_size, pool_indices + img * y_size);
      }
    });
    return;
  }
  const i64 grain = std::max<i64>(1, kConvGrainMacs / std::max<i64>(1, p.k * crs * plane));
  if (use_direct_forward(p)) {
    const DirectPlan plan = make_plan(p, w, /*forward_weights=*/true, /*dx_weights=*/false);
    thread_pool().parallel_for(0, p.n, grain, [&](i64 lo, i64 hi) {
      for (i64 img = lo; img < hi; ++img) {
        forward_direct(p,
                       plan,
                       x + img * p.c * p.h * p.w,
                       img + 1 < p.n,
                       b,
                       y + img * y_size,
                       pool_indices != nullptr ? pool_indices + img * y_size : nullptr);
      }
    });
    return;
  }
  const ConstMatrixMap weight(w, p.k, crs);
  thread_pool().parallel_for(0, p.n, grain, [&](i64 lo, i64 hi) {
    thread_local ScratchBuffer scratch, conv_scratch;
    float* col = is_pointwise(p) ? nullptr : scratch.get(crs * plane);
    float* conv_out = pool_indices != nullptr ? conv_scratch.get(p.k * plane) : nullptr;
    for (i64 img = lo; img < hi; ++img) {
      const float* image = x + img * p.c * p.h * p.w;
      if (col != nullptr) im2col(p, image, col);
      const ConstMatrixMap cols(col != nullptr ? col : image, crs, plane);
      MatrixMap out(conv_out != nullptr ? conv_out : y + img * y_size, p.k, plane);
      if (b != nullptr) {
        out.colwise() = ConstVectorMap(b, p.k);
        out.noalias() += weight * cols;
      } else {
        out.noalias() = weight * cols;
      }
      if (p.relu) relu_in_place(out.data(), p.k * plane);
      if (conv_out == nullptr) continue;
      pool_image(p, conv_out, y + img * y_size, pool_indices + img * y_size);  // ReLU'd above
    }
  });
}

// conv2d_backward, and with pool_indices conv2d_relu_pool_backward (y and dy then the pooled ones).
void conv2d_backward_impl(const Conv2dParams& p,
                          const float* x,
                          const float* w,
                          const float* y,
                          const std::int32_t* pool_indices,
                          const float* dy,
                          float* dx,
                          float* dw,
                          float* db) {
  const i64 crs = p.c * p.r * p.s, plane = p.oh * p.ow, image_size = p.c * p.h * p.w;
  if (dw != nullptr) std::fill(dw, dw + p.k * crs, 0.f);
  if (db != nullptr) std::fill(db, db + p.k, 0.f);
  if (dx != nullptr && (p.k == 0 || plane == 0)) std::fill(dx, dx + p.n * image_size, 0.f);
  if (p.n == 0 || p.k == 0 || plane == 0) return;
  if (dx != nullptr && winograd_applies(p, /*input_grad=*/true)) {
    if (pool_indices == nullptr) {
      winograd_input_grad(p, w, y, dy, dx);
    } else {  // the pooled dy back in place, masked by the ReLU, a chunk of images at a time
      const i64 pooled = p.k * (p.oh / 2) * (p.ow / 2);
      thread_pool().parallel_for(0, p.n, 1, [&](i64 lo, i64 hi) {
        thread_local ScratchBuffer unpooled_scratch;
        Conv2dParams chunk = p;
        chunk.n = hi - lo;
        chunk.relu = false;  // unpool_masked applies it
        float* unpooled = unpooled_scratch.get(chunk.n * p.k * plane);
        std::fill(unpooled, unpooled + chunk.n * p.k * plane, 0.f);
        for (i64 img = lo; img < hi; ++img) {
          const i64 at = img * pooled;
          unpool_masked(p,
                        y + at,
                        dy + at,
                        pool_indices + at,
                        nullptr,
                        plane,
                        unpooled + (img - lo) * p.k * plane);
        }
        winograd_input_grad(chunk, w, nullptr, unpooled, dx + lo * image_size);
      });
    }
    if (dw == nullptr && db == nullptr) return;
    dx = nullptr;  // dw and db below, by the direct kernels
  }

  ThreadPool& pool = thread_pool();
  const i64 macs = p.k * crs * plane * ((dw != nullptr) + (dx != nullptr));
  const i64 grain = std::max<i64>(1, kConvGrainMacs / std::max<i64>(1, macs));
  const int chunks = pool.chunk_count(0, p.n, grain);
  // Chunk 0 accumulates into dw itself, chunk i > 0 into partial i - 1.
  thread_local ScratchBuffer partial_scratch, bias_scratch;
  float* dw_partials = dw != nullptr ? partial_scratch.get((chunks - 1) * p.k * crs) : nullptr;
  double* db_partials = db != nullptr ? bias_scratch.get<double>(chunks * p.k) : nullptr;
  const ConstMatrixMap weight(w, p.k, crs);
  const bool pointwise = is_pointwise(p);
  const bool direct_path = use_direct_backward(p);
  DirectPlan plan{};
  if (direct_path) plan = make_plan(p, w, /*forward_weights=*/false, /*dx_weights=*/dx != nullptr);
  // dx alone (attribution: no dw) of a stride-2 conv by its phases.
  PhaseCorrelations phases;
  if (!direct_path && dx != nullptr && dw == nullptr) phases = make_phase_correlations(p, w);
  // conv2d_relu_pool's dx alone by FullCorrelation: each conv output position's place in the
  // padded dy, for every image's unpool.
  const bool unpool_padded =
      pool_indices != nullptr && direct_path && plan.full.use && dw == nullptr && db == nullptr;
  thread_local ScratchBuffer places_scratch;
  std::int32_t* places = nullptr;
  if (unpool_padded) {
    places = places_scratch.get<std::int32_t>(plane);
    for (i64 r = 0; r < p.oh; ++r) {
      for (i64 c = 0; c < p.ow; ++c) {
        places[r * p.ow + c] =
            static_cast<std::int32_t>((plan.full.pad_h + r) * plan.full.wp + plan.full.pad_w + c);
      }
    }
  }

  pool.parallel_chunks(0, p.n, grain, [&](int chunk, i64 lo, i64 hi) {
    thread_local ScratchBuffer scratch, masked_scratch, unpooled_scratch;
    float* col = pointwise || direct_path || phases.use ? nullptr : scratch.get(crs * plane);
    float* masked = p.relu ? masked_scratch.get(p.k * plane) : nullptr;
    float* dw_chunk = nullptr;
    if (dw != nullptr) {
      dw_chunk = chunk == 0 ? dw : dw_partials + (chunk - 1) * p.k * crs;
      std::fill(dw_chunk, dw_chunk + p.k * crs, 0.f);
    }
    double* db_chunk = db != nullptr ? db_partials + chunk * p.k : nullptr;
    if (db_chunk != nullptr) std::fill(db_chunk, db_chunk + p.k, 0.0);

    for (i64 img = lo; img < hi; ++img) {
      const float* image = x != nullptr ? x + img * image_size : nullptr;
      float* grad_image = dx != nullptr ? dx + img * image_size : nullptr;
      const float* grad_out = nullptr;
      const float* relu_out = nullptr;
      if (pool_indices == nullptr) {
        grad_out = dy + img * p.k * plane;
        // The direct paths apply a fused ReLU's mask as they copy dy into their layouts.
        if (p.relu) relu_out = y + img * p.k * plane;
      } else {  // the pooled dy back in place, masked by the ReLU
        const i64 pooled = p.k * (p.oh / 2) * (p.ow / 2), at = img * pooled;
        if (unpool_padded) {
          input_grad_full_unpool(
              p, plan.full, y + at, dy + at, pool_indices + at, places, grad_image);
          continue;
        }
        float* unpooled = unpooled_scratch.get(p.k * plane);
        std::fill(unpooled, unpooled + p.k * plane, 0.f);
        unpool_masked(p, y + at, dy + at, pool_indices + at, nullptr, plane, unpooled);
        grad_out = unpooled;
        relu_out = nullptr;
      }
      if (relu_out != nullptr && ((!direct_path && !phases.use) || db_chunk != nullptr)) {
        grad_out = relu_masked(relu_out, grad_out, p.k * plane, masked);
        relu_out = nullptr;
      }
      if (db_chunk != nullptr) {
        for (i64 k = 0; k < p.k; ++k) db_chunk[k] += sum_double(grad_out + k * plane, plane);
      }
      if (direct_path && plan.full.use && dw_chunk == nullptr) {
        input_grad_full(p, plan.full, grad_out, relu_out, grad_image);
        continue;
      }
      if (phases.use) {
        input_grad_phases(p, phases, grad_out, relu_out, grad_image);
        continue;
      }
      if (direct_path) {
        const float* dyw = wide_grad_out(p, plan, grad_out, relu_out);
        if (dw_chunk != nullptr) {
          const float* xp = padded_image(p, plan, image);
          micro::weight_grad(dyw, plan.ld, p.k, xp, plan.offsets, crs, plan.count, dw_chunk);
        }
        if (grad_image == nullptr) continue;
        if (plan.full.use) {
          input_grad_full(p, plan.full, grad_out, relu_out, grad_image);
        } else {
          input_grad_direct(p, plan, dyw, grad_image);
        }
        continue;
      }
      const ConstMatrixMap grad_y(grad_out, p.k, plane);
      if (dw_chunk != nullptr) {
        if (!pointwise) im2col(p, image, col);
        const ConstMatrixMap cols(pointwise ? image : col, crs, plane);
        MatrixMap(dw_chunk, p.k, crs).noalias() += grad_y * cols.transpose();
      }
      if (grad_image != nullptr) {
        if (pointwise) {
          MatrixMap(grad_image, crs, plane).noalias() = weight.transpose() * grad_y;
        } else {
          MatrixMap(col, crs, plane).noalias() = weight.transpose() * grad_y;
          std::fill(grad_image, grad_image + image_size, 0.f);
          col2im(p, col, plane, grad_image);
        }
      }
    }
  });

  if (dw != nullptr) {
    for (int chunk = 1; chunk < chunks; ++chunk) {
      const float* part = dw_partials + (chunk - 1) * p.k * crs;
      for (i64 i = 0; i < p.k * crs; ++i) dw[i] += part[i];
    }
  }
  if (db != nullptr) {
    for (i64 k = 0; k < p.k; ++k) {
      double total = 0.0;
      for (int chunk = 0; chunk < chunks; ++chunk) total += db_partials[chunk * p.k + k];
      db[k] = static_cast<float>(total);
    }
  }
}

}  // namespace

void CpuBackend::conv2d_forward(
    const Conv2dParams& p, const float* x, const float* w, const float* b, float* y) {
  conv2d_forward_impl(p, x, w, b, y, nullptr);
}

void CpuBackend::conv2d_backward(const Conv2dParams& p,
                                 const float* x,
                                 const float* w,
                                 const float* y,
                                 const float* dy,
                                 float* dx,
                                 float* dw,
                                 float* db) {
  conv2d_backward_impl(p, x, w, y, nullptr, dy, dx, dw, db);
}

void CpuBackend::conv2d_relu_pool_forward(const Conv2dParams& p,
                                          const float* x,
                                          const float* w,
                                          const float* b,
                                          float* y,
                                          std::int32_t* indices) {
  conv2d_forward_impl(p, x, w, b, y, indices);
}

void CpuBackend::conv2d_relu_pool_backward(const Conv2dParams& p,
                                           const float* x,
                                           const float* w,
                                           const float* y,
                                           const std::int32_t* indices,
                                           const float* dy,
                                           float* dx,
                                           float* dw,
                                           float* db) {
  conv2d_backward_impl(p, x, w, y, indices, dy, dx, dw, db);
}

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA
