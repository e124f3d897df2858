// F(2x2, 3x3) over simd::Vec. Y = A^T [(G g G^T) . (B^T d B)] A for each 4x4 input tile d and 3x3
// kernel g, summed over input channels in the transformed domain:
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].
// Tile (ty, tx) reads padded rows and columns 2 t .. 2 t + 3. Per band of tiles: the input
// transform into V [16][in][band], the 16 products M[e] = U[e] V[e] by micro::correlate, the output
// transform. Two layouts of the tiles:
// - Rows, where a vector of tiles holds whole rows of tiles of one image or a row whole vectors
//   (ResNet8's 32, 16 and 8 wide planes): the transforms read the input's rows and write the
//   output's in place (below, at VectorPlan).
// - Phases, any size: the padded input split into its four phases (row and column parity), tile
//   element (i, j) is phase (i % 2, j % 2) at position (ty + i / 2) * wq + tx + j / 2, so the
//   tiles of a row are one contiguous run. Tiles are numbered over the wide grid ty * wq + tx of
//   every image in a group (the phase planes' last row is read, never a tile; their last column
//   makes a discarded tile per row, as conv2d.cpp's wide rows); the output transform writes the
//   output's phases, and each output row is then its two column phases interleaved.
// Both give the same bits. Every step is per position, in a fixed order, so the result does not
// depend on the batch, the grouping or the threads.
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
// Layout::Rows needs masks of lane ranges and merging loads, which the FMA types have.
constexpr bool kRowsLayout = kFasterThanDirect;
// Bands are a whole number of correlate's widest tiles (3 vectors of 16, 2 of 16, 2 of 8 or 2 of
// 4), so that only a group's last band has a masked tail.
constexpr i64 kBandStep = 96;
// Floats of V and M per band, and of the input and output phases per group of images: sized so
// each stays in a core's L2 cache between the steps that write and read it.
constexpr i64 kBandFloats = i64{1} << 16;
constexpr i64 kGroupFloats = i64{1} << 17;

i64 round_up(i64 n, i64 m) { return (n + m - 1) / m * m; }

// GRADLENS_WINOGRAD: "0" keeps the direct kernels (their rounding, and bench_cpu_variants' *Direct
// rows); "phases" reads every conv's tiles through the phases (the *Phases rows, and the test that
// the row layout gives their bits). Read at each call: a few tens of nanoseconds against a conv's
// tens of microseconds.
std::string_view winograd_setting() {
  const char* env = std::getenv("GRADLENS_WINOGRAD");
  return env != nullptr ? std::string_view(env) : std::string_view();
}

// Where the tiles come from: every vector of tiles one run of the padded input's phases (any
// size), or whole rows of tiles of one image read from the input itself (Rows: no split and no
// merge, and no discarded column).
enum class Layout { Phases, Rows };

// A 3x3 stride-1 correlation of `in` planes [h, w] zero-padded by `padding` into `out` planes
// [oh, ow]; phase planes of hq x wq positions (one more than the tiles each way).
struct Plan {
  i64 in, out, h, w, padding, oh, ow;
  i64 tiles_h, tiles_w, hq, wq, plane;
  const float* packed;  // U[e] [out, in] for each element e, micro::pack_weights'd
  Layout layout;
  i64 rows_per_vector;  // Rows: tile rows in a vector (1: tiles_w is a multiple of the lanes)
  i64 vectors;          // Rows: vectors of tiles per image
  i64 image_tiles;      // tiles numbered per image (Phases: with the discarded column)
};

// Rows where a vector holds whole rows of tiles (at most 4, so a half-vector load per row) or a
// row holds whole vectors, unless phantom tile rows (past tiles_h, to fill the last vector) would
// make more tiles than the phases' discarded column.
Plan make_plan(i64 in, i64 out, i64 h, i64 w, i64 padding, const float* packed) {
  const i64 oh = h + 2 * padding - 2, ow = w + 2 * padding - 2;
  const i64 tiles_h = (oh + 1) / 2, tiles_w = (ow + 1) / 2;
  const i64 hq = tiles_h + 1, wq = tiles_w + 1;
  Plan pl{in,
          out,
          h,
          w,
          padding,
          oh,
          ow,
          tiles_h,
          tiles_w,
          hq,
          wq,
          hq * wq,
          packed,
          Layout::Phases,
          0,
          0,
          tiles_h * wq};
  const i64 rows = tiles_w % kLanes == 0 ? 1 : kLanes % tiles_w == 0 ? kLanes / tiles_w : 0;
  if (kRowsLayout && rows >= 1 && rows <= 4 && winograd_setting() != "phases") {
    const i64 vectors = rows == 1 ? tiles_h * tiles_w / kLanes : (tiles_h + rows - 1) / rows;
    if (vectors * kLanes <= pl.image_tiles) {
      pl.layout = Layout::Rows;
      pl.rows_per_vector = rows;
      pl.vectors = vectors;
      pl.image_tiles = vectors * kLanes;
    }
  }
  return pl;
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

// (B^T d B) of 4x4 tiles d[i][j] (padded row i, column j of each lane's tile) into its 16
// elements, out[(4 i + j) * element_stride] for element (i, j).
inline void transform_tile(const Vec (&d)[4][4], float* out, i64 element_stride) {
  Vec t[4][4];  // B^T d: the rows
  for (int j = 0; j < 4; ++j) {
    t[0][j] = d[0][j] - d[2][j];
    t[1][j] = d[1][j] + d[2][j];
    t[2][j] = d[2][j] - d[1][j];
    t[3][j] = d[1][j] - d[3][j];
  }
  for (int i = 0; i < 4; ++i) {  // then B: the columns
    float* row = out + i * 4 * element_stride;
    (t[i][0] - t[i][2]).store(row);
    (t[i][1] + t[i][2]).store(row + element_stride);
    (t[i][2] - t[i][1]).store(row + 2 * element_stride);
    (t[i][1] - t[i][3]).store(row + 3 * element_stride);
  }
}

// y[a][b] = (A^T M A)[a][b] (+ bias, ReLU'd) of the tiles whose 16 elements are at
// m[e * element_stride], the live lanes only (the others 0).
inline void inverse_tile(const float* m,
                         i64 element_stride,
                         const typename Vec::Mask* live,  // null: every lane
                         Vec bias,
                         bool with_relu,
                         Vec (&y)[2][2]) {
  const auto load = [live](const float* p) {
    return live != nullptr ? Vec::load(p, *live) : Vec::load(p);
  };
  Vec r[2][4];  // A^T M: two rows
  for (int j = 0; j < 4; ++j) {
    const float* col = m + j * element_stride;
    const Vec m0 = load(col), m1 = load(col + 4 * element_stride);
    const Vec m2 = load(col + 8 * element_stride), m3 = load(col + 12 * element_stride);
    r[0][j] = m0 + m1 + m2;
    r[1][j] = m1 - m2 - m3;
  }
  for (int a = 0; a < 2; ++a) {  // then A: two columns
    y[a][0] = r[a][0] + r[a][1] + r[a][2] + bias;
    y[a][1] = r[a][1] - r[a][2] - r[a][3] + bias;
    if (with_relu) {
      y[a][0] = relu(y[a][0]);
      y[a][1] = relu(y[a][1]);
    }
  }
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
      const i64 at = (img * pl.in + c) * pl.h * pl.w;
      simd::split_padded_plane(x + at,
                               positive != nullptr ? positive + at : nullptr,
                               row,
                               pl.h,
                               pl.w,
                               pl.padding,
                               pl.hq,
                               pl.wq,
                               stride,
                               phases + c * 4 * stride + img * pl.plane);
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
  const i64 tiles = pl.image_tiles;
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
        Vec d[4][4];
        for (int i = 0; i < 4; ++i) {
          for (int j = 0; j < 4; ++j) {
            d[i][j] = Vec::load(at + (i % 2 * 2 + j % 2) * stride + i / 2 * pl.wq + q + j / 2);
          }
        }
        transform_tile(d, vc + q, pl.in * ldv);
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
      Vec y[2][2];
      inverse_tile(mo + q, element, &live, b, with_relu, y);
      for (int a = 0; a < 2; ++a) {
        y[a][0].store(out + 2 * a * stride + q, live);
        y[a][1].store(out + (2 * a + 1) * stride + q, live);
      }
    }
  }
}

// The output phases of count images (tiles numbered as in transform_input) into y [count, out,
// oh, ow].
void merge_phases(const Plan& pl, const float* phases, i64 stride, i64 count, float* y) {
  const i64 pairs = pl.ow / 2, tiles = pl.image_tiles;
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

#if defined(__FMA__)
// Layout::Rows. Vector k of an image holds tiles k * kLanes + lane over the image's rows of tiles
// (rows_per_vector whole rows, or a part of one row), so its tiles' padded row 2 ty + i comes from
// one or a few input rows: read as a window of two vectors, where each tile row takes the input
// columns its tiles read (2 tx + j - padding for j in {2 pair, 2 pair + 1}), zeros outside the
// image, and a deinterleave gives columns 2 pair and 2 pair + 1 of every tile. The output rows go
// back the same way. A window vector holds at most two tile rows, so takes at most two (masked)
// loads.
struct Part {
  // From the channel's plane to lane 0's place, which may lie outside it: only the mask's lanes
  // are read or written (0 where the mask is empty).
  i64 offset;
  Vec::Mask mask;
};
struct VectorPlan {
  Part in[4][2][2][2];  // [padded row i][columns 2 pair, 2 pair + 1][window vector][tile row]
  Part out[2][2][2];    // [output row a][window vector][tile row in it]
};

// Lanes [lo, hi) of window vector `half` at rows x cols (col0 is lane 0's column), those inside.
Part make_part(i64 row, i64 rows, i64 col0, i64 cols, i64 lo, i64 hi) {
  lo = std::max(lo, -col0);
  hi = std::min(hi, cols - col0);
  if (row < 0 || row >= rows || lo >= hi) return {0, Vec::mask_range(0, 0)};
  return {row * cols + col0, Vec::mask_range(lo, hi)};
}

std::vector<VectorPlan> make_vector_plans(const Plan& pl) {
  const i64 rows = pl.rows_per_vector;
  const i64 segment = 2 * kLanes / rows;  // window lanes per tile row
  std::vector<VectorPlan> plans(static_cast<std::size_t>(pl.vectors));
  for (i64 k = 0; k < pl.vectors; ++k) {
    const i64 ty0 = rows == 1 ? k * kLanes / pl.tiles_w : k * rows;
    const i64 tx0 = rows == 1 ? k * kLanes % pl.tiles_w : 0;
    VectorPlan& vp = plans[static_cast<std::size_t>(k)];
    for (int half = 0; half < 2; ++half) {
      for (int part = 0; part < 2; ++part) {
        // The tile row s whose lanes [lo, hi) of this window vector hold; lane 0 at column col.
        const i64 s = rows == 1 ? 0 : half * kLanes / segment + part;
        const bool used = rows == 4 || part == 0;
        const i64 lo = rows == 1 ? 0 : s * segment - half * kLanes;
        const i64 hi = used ? (rows == 1 ? kLanes : lo + segment) : lo;
        const i64 col = 2 * tx0 + half * kLanes - (rows == 1 ? 0 : s * segment);
        for (int i = 0; i < 4; ++i) {
          for (int pair = 0; pair < 2; ++pair) {
            vp.in[i][pair][half][part] = make_part(
                2 * (ty0 + s) + i - pl.padding, pl.h, col + 2 * pair - pl.padding, pl.w, lo, hi);
          }
        }
        for (int a = 0; a < 2; ++a) {
          vp.out[a][half][part] = make_part(2 * (ty0 + s) + a, pl.oh, col, pl.ow, lo, hi);
        }
      }
    }
  }
  return plans;
}

template <int Parts>
inline Vec gather(const float* plane, const Part (&parts)[2]) {
  Vec v = Vec::load(plane + parts[0].offset, parts[0].mask);
  if constexpr (Parts == 2) v = Vec::load(plane + parts[1].offset, parts[1].mask, v);
  return v;
}

// V as transform_input's, tiles numbered image by image (q = image * image_tiles + k * kLanes +
// lane); q0 and count are whole vectors; tiles past the images are zeros.
template <int Parts>
void transform_input_rows(const Plan& pl,
                          const VectorPlan* plans,
                          const float* x,
                          const float* positive,
                          i64 images,
                          i64 q0,
                          i64 count,
                          i64 ldv,
                          float* v) {
  const i64 plane_size = pl.h * pl.w, first = q0 / kLanes, last = (q0 + count) / kLanes;
  for (i64 c = 0; c < pl.in; ++c) {
    float* vc = v + c * ldv - q0;
    i64 img = first / pl.vectors, k = first % pl.vectors;
    for (i64 vec = first; vec < last; ++vec) {
      float* out = vc + vec * kLanes;
      if (img >= images) {
        for (int e = 0; e < kElements; ++e) Vec::zero().store(out + e * pl.in * ldv);
        continue;
      }
      const i64 at = (img * pl.in + c) * plane_size;
      const VectorPlan& vp = plans[k];
      Vec d[4][4];
      for (int i = 0; i < 4; ++i) {
        for (int pair = 0; pair < 2; ++pair) {
          Vec window[2];
          for (int half = 0; half < 2; ++half) {
            const auto& parts = vp.in[i][pair][half];
            window[half] = gather<Parts>(x + at, parts);
            if (positive != nullptr) {
              window[half] = where_positive(gather<Parts>(positive + at, parts), window[half]);
            }
          }
          Vec::deinterleave(window[0], window[1], d[i][2 * pair], d[i][2 * pair + 1]);
        }
      }
      transform_tile(d, out, pl.in * ldv);
      if (++k == pl.vectors) {
        k = 0;
        ++img;
      }
    }
  }
}

// y planes of the images from the band's M (tiles [q0, q0 + count), whole vectors).
template <int Parts>
void transform_output_rows(const Plan& pl,
                           const VectorPlan* plans,
                           const float* m,
                           i64 ldm,
                           const float* bias,
                           bool with_relu,
                           i64 q0,
                           i64 count,
                           float* y) {
  const i64 element = pl.out * ldm, plane_size = pl.oh * pl.ow;
  for (i64 o = 0; o < pl.out; ++o) {
    const Vec b = bias != nullptr ? Vec::set1(bias[o]) : Vec::zero();
    const float* mo = m + o * ldm - q0;
    i64 img = q0 / kLanes / pl.vectors, k = q0 / kLanes % pl.vectors;
    for (i64 q = q0; q < q0 + count; q += kLanes) {
      Vec r[2][2];
      inverse_tile(mo + q, element, nullptr, b, with_relu, r);
      float* plane = y + (img * pl.out + o) * plane_size;
      for (int a = 0; a < 2; ++a) {
        Vec window[2];
        Vec::interleave(r[a][0], r[a][1], window[0], window[1]);
        for (int half = 0; half < 2; ++half) {
          for (int part = 0; part < Parts; ++part) {
            const Part& to = plans[k].out[a][half][part];
            window[half].store(plane + to.offset, to.mask);
          }
        }
      }
      if (++k == pl.vectors) {
        k = 0;
        ++img;
      }
    }
  }
}
#endif

// A band's V and M, one pair a thread whichever layout runs.
struct BandScratch {
  ScratchBuffer v, m;
};
BandScratch& band_scratch() {
  thread_local BandScratch scratch;
  return scratch;
}

// y [n, out, oh, ow] from x [n, in, h, w] (masked by `positive`, when given).
void run(const Plan& pl,
         i64 n,
         const float* x,
         const float* positive,
         const float* bias,
         bool relu,
         float* y) {
  const i64 tiles = pl.image_tiles;
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
  // The 16 products of a band's V into its M.
  const auto multiply = [&](const float* v, i64 computed, float* m) {
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
  };

#if defined(__FMA__)
  if (pl.layout == Layout::Rows) {
    const std::vector<VectorPlan> plans = make_vector_plans(pl);
    const auto rows = [&]<int Parts>(i64 lo, i64 hi) {
      float* v = band_scratch().v.get(kElements * pl.in * ldv);
      float* m = band_scratch().m.get(kElements * pl.out * ldv);
      const float* xs = x + lo * in_size;
      const float* ps = positive != nullptr ? positive + lo * in_size : nullptr;
      const i64 total = (hi - lo) * tiles;
      for (i64 q0 = 0; q0 < total; q0 += band) {
        const i64 len = std::min(band, total - q0);
        const i64 computed = std::min(round_up(len, tile_width), band);
        transform_input_rows<Parts>(pl, plans.data(), xs, ps, hi - lo, q0, computed, ldv, v);
        multiply(v, computed, m);
        transform_output_rows<Parts>(
            pl, plans.data(), m, ldv, bias, relu, q0, len, y + lo * out_size);
      }
    };
    pool.parallel_for(0, n, grain, [&](i64 lo, i64 hi) {
      if (pl.rows_per_vector == 4) {
        rows.template operator()<2>(lo, hi);
      } else {
        rows.template operator()<1>(lo, hi);
      }
    });
    return;
  }
#endif

  pool.parallel_for(0, n, grain, [&](i64 lo, i64 hi) {
    thread_local ScratchBuffer in_scratch, out_scratch, row_scratch;
    float* v = band_scratch().v.get(kElements * pl.in * ldv);
    float* m = band_scratch().m.get(kElements * pl.out * ldv);
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
        multiply(v, computed, m);
        transform_output(pl, m, ldv, bias, relu, q0, len, out_stride, out_phases);
      }
      merge_phases(pl, out_phases, out_stride, count, y + first * out_size);
    }
  });
}

}  // namespace

bool winograd_applies(const Conv2dParams& p, bool input_grad) {
  if (!kFasterThanDirect || winograd_setting() == "0") return false;
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
