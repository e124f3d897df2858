// F(2x2, 3x3) over simd::Vec. Y = A^T [(G g G^T) . (B^T d B)] A for each 4x4 input tile d and 3x3
// kernel g, summed over input channels in the transformed domain:
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].
// Tile (ty, tx) reads padded rows and columns 2 t .. 2 t + 3. With the padded input split into its
// four phases (row and column parity), tile element (i, j) is phase (i % 2, j % 2) at position
// (ty + i / 2) * wq + tx + j / 2, so the tiles of a row are one contiguous run and the transforms
// load vectors across tiles. Tiles are numbered over the wide grid ty * wq + tx of every image in a
// group (the phase planes' last row is read, never a tile; their last column makes a discarded
// tile per row, as conv2d.cpp's wide rows). Per band of tiles: the input transform into V
// [16][in][band], the 16 products M[e] = U[e] V[e] by micro::correlate, the output transform into
// the output's phases; then each output row is its two column phases interleaved. Every step is per
// position, in a fixed order, so the result does not depend on the batch, the grouping or the
// threads.
#include "gradlens/kernels/cpu/conv2d_winograd.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "gradlens/kernels/cpu/common/scratch.h"
#include "gradlens/kernels/cpu/common/thread_pool.h"
#include "gradlens/kernels/cpu/microkernels.h"
#include "gradlens/kernels/cpu/simd.h"

namespace gradlens::cpu::GRADLENS_CPU_ISA {
namespace {

using simd::Vec;
constexpr int kLanes = Vec::kLanes;
constexpr int kElements = 16;  // of a transformed 4x4 tile

// Only where the ISA has FMA: the generic x86-64 variant (SSE2, a multiply and an add) measured
// 1.4x slower than its direct kernels on 16 channels at 32x32 (as fast at 32, faster at 64).
#if defined(__FMA__)
constexpr bool kFasterThanDirect = true;
#else
constexpr bool kFasterThanDirect = false;
#endif
// Bands are a whole number of correlate's widest tiles (3 vectors of 16, 2 of 16, 2 of 8 or 2 of
// 4), so that only a group's last band has a masked tail.
constexpr i64 kBandStep = 96;
// Floats of V and M per band, and of the input and output phases per group of images: sized so
// each stays in a core's L2 cache between the steps that write and read it.
constexpr i64 kBandFloats = i64{1} << 16;
constexpr i64 kGroupFloats = i64{1} << 17;

i64 round_up(i64 n, i64 m) { return (n + m - 1) / m * m; }

// A 3x3 stride-1 correlation of `in` planes [h, w] zero-padded by `padding` into `out` planes
// [oh, ow]; phase planes of hq x wq positions (one more than the tiles each way).
struct Plan {
  i64 in, out, h, w, padding, oh, ow;
  i64 tiles_h, tiles_w, hq, wq, plane;
  const float* packed;  // U[e] [out, in] for each element e, micro::pack_weights'd
};

Plan make_plan(i64 in, i64 out, i64 h, i64 w, i64 padding, const float* packed) {
  const i64 oh = h + 2 * padding - 2, ow = w + 2 * padding - 2;
  const i64 tiles_h = (oh + 1) / 2, tiles_w = (ow + 1) / 2;
  return {in,
          out,
          h,
          w,
          padding,
          oh,
          ow,
          tiles_h,
          tiles_w,
          tiles_h + 1,
          tiles_w + 1,
          (tiles_h + 1) * (tiles_w + 1),
          packed};
}

// U = G g G^T of every kernel of conv2d's w [k, c, 3, 3], in double, rounded once; for dx the
// flipped and transposed kernels, g[c, k, r, s] = w[k, c, 2 - r, 2 - s]. Packed per element.
std::vector<float> transform_weights(const float* w, i64 k, i64 c, bool input_grad) {
  const i64 out = input_grad ? c : k, in = input_grad ? k : c;
  std::vector<float> u(kElements * out * in);
  for (i64 o = 0; o < out; ++o) {
    for (i64 i = 0; i < in; ++i) {
      const float* kernel = w + (input_grad ? i * c + o : o * c + i) * 9;
      const auto g = [&](int r, int s) {
        return static_cast<double>(input_grad ? kernel[(2 - r) * 3 + 2 - s] : kernel[r * 3 + s]);
      };
      double gg[4][3];
      for (int s = 0; s < 3; ++s) {
        const double a = g(0, s), b = g(1, s), cc = g(2, s);
        gg[0][s] = a;
        gg[1][s] = (a + b + cc) / 2;
        gg[2][s] = (a - b + cc) / 2;
        gg[3][s] = cc;
      }
      for (int r = 0; r < 4; ++r) {
        const double a = gg[r][0], b = gg[r][1], cc = gg[r][2];
        const double row[4] = {a, (a + b + cc) / 2, (a - b + cc) / 2, cc};
        for (int q = 0; q < 4; ++q) {
          u[((r * 4 + q) * out + o) * in + i] = static_cast<float>(row[q]);
        }
      }
    }
  }
  std::vector<float> packed(u.size());
  for (int e = 0; e < kElements; ++e) {
    micro::pack_weights(u.data() + e * out * in, out, in, packed.data() + e * out * in);
  }
  return packed;
}

// The transformed weights of the last convs this thread ran, each kept with a copy of the weights
// it came from and reused only while they are bitwise the same: attribution calls the same convs
// on chunk after chunk of a few rows, where transforming them each time cost a tenth of the conv.
const float* cached_weights(const float* w, i64 k, i64 c, bool input_grad) {
  struct Entry {
    const float* source;
    i64 k, c;
    bool input_grad;
    std::vector<float> weights, packed;
  };
  constexpr std::size_t kMaxFloats = std::size_t{1} << 22;  // 16 MiB of weights a thread
  thread_local std::vector<Entry> cache;                    // the most recent last
  const std::size_t size = static_cast<std::size_t>(k * c * 9);
  for (auto it = cache.begin(); it != cache.end(); ++it) {
    if (it->source != w || it->k != k || it->c != c || it->input_grad != input_grad) continue;
    if (std::memcmp(w, it->weights.data(), size * sizeof(float)) != 0) {
      cache.erase(it);
      break;
    }
    std::rotate(it, it + 1, cache.end());
    return cache.back().packed.data();
  }
  std::size_t floats = 0;
  for (const Entry& e : cache) floats += e.weights.size() + e.packed.size();
  while (!cache.empty() && floats + size * 3 > kMaxFloats) {
    floats -= cache.front().weights.size() + cache.front().packed.size();
    cache.erase(cache.begin());
  }
  cache.push_back({w,
                   k,
                   c,
                   input_grad,
                   std::vector<float>(w, w + size),
                   transform_weights(w, k, c, input_grad)});
  return cache.back().packed.data();
}

// count images [in, h, w] (masked where `positive` is not > 0, when given) -> their padded phases,
// phases[(c * 4 + phase) * stride + image * plane + i * wq + j], zeros around and after.
void split_phases(const Plan& pl,
                  const float* x,
                  const float* positive,
                  i64 count,
                  i64 stride,
                  float* row,
                  float* phases) {
  // Image by image, each channel's rows in order: x is read front to back once.
  for (i64 img = 0; img < count; ++img) {
    for (i64 c = 0; c < pl.in; ++c) {
      float* planes = phases + c * 4 * stride + img * pl.plane;
      for (i64 i = 0; i < pl.hq; ++i) {
        for (int a = 0; a < 2; ++a) {
          float* const row_phases[2] = {planes + 2 * a * stride + i * pl.wq,
                                        planes + (2 * a + 1) * stride + i * pl.wq};
          const i64 y = 2 * i + a - pl.padding;  // the source row of this phase row
          if (y < 0 || y >= pl.h) {
            simd::zero_row(row_phases[0], pl.wq);
            simd::zero_row(row_phases[1], pl.wq);
            continue;
          }
          const i64 at = ((img * pl.in + c) * pl.h + y) * pl.w;
          const float* src = x + at;
          if (positive != nullptr) {
            simd::copy_row_where_positive(row, src, positive + at, pl.w);
            src = row;
          }
          simd::split_padded_row(src, pl.w, pl.padding, pl.wq, row_phases);
        }
      }
    }
  }
  const i64 used = count * pl.plane;
  for (i64 c = 0; c < 4 * pl.in; ++c) simd::zero_row(phases + c * stride + used, stride - used);
}

// V[(e * in + c) * ldv + q - q0] = (B^T d B)[e] of tile q for q in [q0, q0 + count), tiles
// numbered image by image over the first tiles_h rows of the wide grid (q = image * tiles_h * wq +
// ty * wq + tx); tiles past the group's `images` read the zeros after its phases. Writes up to
// kLanes - 1 floats past count (the phases have room for those reads).
void transform_input(const Plan& pl,
                     const float* phases,
                     i64 stride,
                     i64 images,
                     i64 q0,
                     i64 count,
                     i64 ldv,
                     float* v) {
  const i64 tiles = pl.tiles_h * pl.wq;
  for (i64 c = 0; c < pl.in; ++c) {
    const float* ph = phases + c * 4 * stride;
    float* vc = v + c * ldv - q0;
    // One run of tiles per image, and one past the last image (tiles computed only to fill
    // correlate's last tile: they read the zeros after the phases); a run's last vector spills
    // into the next run's first tiles, which that run then overwrites.
    for (i64 q = q0; q < q0 + count;) {
      const i64 img = std::min(q / tiles, images);
      const i64 end = img < images ? std::min(q0 + count, (img + 1) * tiles) : q0 + count;
      const float* at = ph + img * pl.plane - img * tiles;  // at[q] is tile q's position
      for (; q < end; q += kLanes) {
        Vec t[4][4];  // B^T d: the rows
        for (int j = 0; j < 4; ++j) {
          const float* col = at + (j % 2) * stride + q + j / 2;
          const Vec d0 = Vec::load(col), d1 = Vec::load(col + 2 * stride);
          const Vec d2 = Vec::load(col + pl.wq), d3 = Vec::load(col + 2 * stride + pl.wq);
          t[0][j] = d0 - d2;
          t[1][j] = d1 + d2;
          t[2][j] = d2 - d1;
          t[3][j] = d1 - d3;
        }
        for (int i = 0; i < 4; ++i) {  // then B: the columns
          float* out = vc + i * 4 * pl.in * ldv + q;
          (t[i][0] - t[i][2]).store(out);
          (t[i][1] + t[i][2]).store(out + pl.in * ldv);
          (t[i][2] - t[i][1]).store(out + 2 * pl.in * ldv);
          (t[i][1] - t[i][3]).store(out + 3 * pl.in * ldv);
        }
      }
      q = end;
    }
  }
}

// Output phases[(o * 4 + 2 a + b) * stride + q0 + q] = (A^T M A)[a][b] of tile q0 + q (+ bias,
// ReLU'd) for q < count.
void transform_output(const Plan& pl,
                      const float* m,
                      i64 ldm,
                      const float* bias,
                      bool with_relu,
                      i64 q0,
                      i64 count,
                      i64 stride,
                      float* phases) {
  const i64 element = pl.out * ldm;
  for (i64 o = 0; o < pl.out; ++o) {
    const Vec b = bias != nullptr ? Vec::set1(bias[o]) : Vec::zero();
    const float* mo = m + o * ldm;
    float* out = phases + o * 4 * stride + q0;
    for (i64 q = 0; q < count; q += kLanes) {
      const auto live = Vec::mask_below(count - q);
      Vec r[2][4];  // A^T M: two rows
      for (int j = 0; j < 4; ++j) {
        const float* col = mo + j * element + q;
        const Vec m0 = Vec::load(col, live), m1 = Vec::load(col + 4 * element, live);
        const Vec m2 = Vec::load(col + 8 * element, live), m3 = Vec::load(col + 12 * element, live);
        r[0][j] = m0 + m1 + m2;
        r[1][j] = m1 - m2 - m3;
      }
      for (int a = 0; a < 2; ++a) {  // then A: two columns
        Vec y0 = r[a][0] + r[a][1] + r[a][2] + b, y1 = r[a][1] - r[a][2] - r[a][3] + b;
        if (with_relu) {
          y0 = relu(y0);
          y1 = relu(y1);
        }
        y0.store(out + 2 * a * stride + q, live);
        y1.store(out + (2 * a + 1) * stride + q, live);
      }
    }
  }
}

// The output phases of count images (tiles numbered as in transform_input) into y [count, out,
// oh, ow].
void merge_phases(const Plan& pl, const float* phases, i64 stride, i64 count, float* y) {
  const i64 pairs = pl.ow / 2, tiles = pl.tiles_h * pl.wq;
  for (i64 img = 0; img < count; ++img) {
    for (i64 o = 0; o < pl.out; ++o) {
      float* plane = y + (img * pl.out + o) * pl.oh * pl.ow;
      for (i64 oy = 0; oy < pl.oh; ++oy) {
        const float* even = phases + (o * 4 + oy % 2 * 2) * stride + img * tiles + oy / 2 * pl.wq;
        float* dst = plane + oy * pl.ow;
        simd::interleave_row(dst, even, even + stride, pairs);
        if (pl.ow % 2 != 0) dst[pl.ow - 1] = even[pairs];
      }
    }
  }
}

// y [n, out, oh, ow] from x [n, in, h, w] (masked by `positive`, when given).
void run(const Plan& pl,
         i64 n,
         const float* x,
         const float* positive,
         const float* bias,
         bool relu,
         float* y) {
  const i64 tiles = pl.tiles_h * pl.wq;  // per image, with the discarded column
  const i64 macs = kElements * pl.in * pl.out * tiles;
  // Chunks of at least two bands where the images allow it: a chunk of a few small images leaves
  // correlate only short masked tiles (ResNet8's 8x8 layer3 at 16 rows: 1.3x slower in chunks of
  // 2). A nested call (attribution's concurrent chunks) runs its chunks in turn: one chunk.
  ThreadPool& pool = thread_pool();
  const i64 per_thread = (n + pool.num_threads() - 1) / pool.num_threads();
  const i64 grain = ThreadPool::runs_inline()
                        ? n
                        : std::max({i64{1},
                                    kConvGrainMacs / std::max<i64>(1, macs),
                                    std::min(per_thread, (2 * kBandStep + tiles - 1) / tiles)});
  const i64 group = std::max<i64>(1, kGroupFloats / (4 * (pl.in + pl.out) * pl.plane));
  const i64 band = std::max<i64>(
      kBandStep, kBandFloats / (kElements * (pl.in + pl.out)) / kBandStep * kBandStep);
  const i64 ldv = band + simd::kMaxLanes;  // transform_input's spill
  std::vector<i64> offsets(pl.in);
  for (i64 c = 0; c < pl.in; ++c) offsets[c] = c * ldv;
  // A band's last tiles rounded up to correlate's full tile (a divisor of kBandStep): the extra
  // tiles' products are discarded, cheaper than a masked tail.
  const i64 tile_width = micro::correlate_tile_width(offsets.data(), pl.in, pl.out);
  const i64 in_size = pl.in * pl.h * pl.w, out_size = pl.out * pl.oh * pl.ow;

  pool.parallel_for(0, n, grain, [&](i64 lo, i64 hi) {
    thread_local ScratchBuffer in_scratch, out_scratch, v_scratch, m_scratch, row_scratch;
    float* v = v_scratch.get(kElements * pl.in * ldv);
    float* m = m_scratch.get(kElements * pl.out * ldv);
    float* row = row_scratch.get(pl.w);
    for (i64 first = lo; first < hi; first += group) {
      const i64 count = std::min(group, hi - first), total = count * tiles;
      // transform_input reads up to wq + 1 past a tile, a vector at a time, up to correlate's
      // tile width past the last (those tiles all read the zeros after the last image).
      const i64 in_stride =
          round_up(count * pl.plane + tile_width + pl.wq + 1 + simd::kMaxLanes, simd::kMaxLanes);
      const i64 out_stride = round_up(total, simd::kMaxLanes);
      float* in_phases = in_scratch.get(4 * pl.in * in_stride);
      float* out_phases = out_scratch.get(4 * pl.out * out_stride);
      split_phases(pl,
                   x + first * in_size,
                   positive != nullptr ? positive + first * in_size : nullptr,
                   count,
                   in_stride,
                   row,
                   in_phases);
      for (i64 q0 = 0; q0 < total; q0 += band) {
        const i64 len = std::min(band, total - q0);
        const i64 computed = std::min(round_up(len, tile_width), band);
        transform_input(pl, in_phases, in_stride, count, q0, computed, ldv, v);
        for (int e = 0; e < kElements; ++e) {
          micro::correlate(v + e * pl.in * ldv,
                           offsets.data(),
                           pl.in,
                           pl.packed + e * pl.out * pl.in,
                           nullptr,
                           pl.out,
                           computed,
                           ldv,
                           m + e * pl.out * ldv);
        }
        transform_output(pl, m, ldv, bias, relu, q0, len, out_stride, out_phases);
      }
      merge_phases(pl, out_phases, out_stride, count, y + first * out_size);
    }
  });
}

}  // namespace

bool winograd_applies(const Conv2dParams& p, bool input_grad) {
  if (!kFasterThanDirect) return false;
  // GRADLENS_WINOGRAD=0: the direct kernels' rounding, and bench_cpu_variants' *Direct rows. Read
  // at each call (a few tens of nanoseconds against a conv's tens of microseconds).
  if (const char* env = std::getenv("GRADLENS_WINOGRAD");
      env != nullptr && std::string_view(env) == "0")
    return false;
  if (p.r != 3 || p.s != 3 || p.stride != 1 || p.padding > 2) return false;
  if (p.n <= 0 || p.oh <= 0 || p.ow <= 0) return false;
  const i64 in = input_grad ? p.k : p.c, out = input_grad ? p.c : p.k;
  return in >= 8 && out >= 8;
}

void winograd_forward(
    const Conv2dParams& p, const float* x, const float* w, const float* b, float* y) {
  const float* packed = cached_weights(w, p.k, p.c, /*input_grad=*/false);
  run(make_plan(p.c, p.k, p.h, p.w, p.padding, packed), p.n, x, nullptr, b, p.relu, y);
}

// dx is the correlation of dy, padded by 2 - padding, with the kernels flipped and transposed.
void winograd_input_grad(
    const Conv2dParams& p, const float* w, const float* y, const float* dy, float* dx) {
  const float* packed = cached_weights(w, p.k, p.c, /*input_grad=*/true);
  const Plan plan = make_plan(p.k, p.c, p.oh, p.ow, 2 - p.padding, packed);
  run(plan, p.n, dy, p.relu ? y : nullptr, nullptr, false, dx);
}

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA
