// conv2d forward and backward, direct (no im2col buffer): the tutorial's convolutions are small
// (3 to 16 channels, 5x5) and the batches large, so each thread computes a register tile of 4
// consecutive pixels x up to 16 channels with the weights of those channels in shared memory
// (an implicit GEMM: pixels x channels, summed over the taps), reading each input value once per
// tap for all its channels and each float4 of weights once for 4 pixels. dw and db are long
// reductions over the batch and the pixels: blocks take a share of the positions and the shares are
// added in a fixed order. The shapes those kernels do not take (weights too big for shared memory,
// dw for strides above 1 or kernels wider than 8, tensors past 2^30 elements) run as implicit
// GEMMs through gemm.cuh's tiled kernel, and with TF32 on (kernels/precision.h) all three
// products run through its tensor-core kernel; the operands below say how each gathers its values.
#include <optional>

#include "gradlens/kernels/cuda/cuda_backend.cuh"
#include "gradlens/kernels/cuda/gemm.cuh"
#include "gradlens/kernels/cuda/launch.cuh"
#include "gradlens/kernels/cuda/reduce.cuh"
#include "gradlens/kernels/precision.h"

namespace gradlens::cuda {

namespace {

constexpr int kChannelsPerThread = 16;
constexpr i64 kSharedFloats = 12288;  // 48 KiB of weights per block
constexpr int kConvThreads = 128;

// The fused ReLU (Conv2dParams::relu). Forward: x < 0 ? 0 : x, so NaN propagates as in the
// separate relu. Backward: dy at i where the output y is positive, else 0; y_row is null when no
// ReLU is fused (y_row and dy_row point at the same element of their tensors).
__device__ inline float relu_if(bool relu, float v) { return relu && v < 0.f ? 0.f : v; }
template <class Index>
__device__ inline float masked_grad(const float* dy_row, const float* y_row, Index i) {
  const float d = dy_row[i];
  return y_row == nullptr || y_row[i] > 0.f ? d : 0.f;
}
// The row of y that matches dy_row, or null without a fused ReLU.
__device__ inline const float* mask_row(const float* y, const float* dy, const float* dy_row) {
  return y != nullptr ? y + (dy_row - dy) : nullptr;
}

// Consecutive output columns of one row that a thread of the tiled kernels computes.
constexpr int kPixelsPerThread = 4;
// The widest kernel the sliding-window kernels take (their window of a row lives in registers).
constexpr int kMaxWindowWidth = 8;

// The sizes as 32-bit ints (the tiled kernels' index type).
template <class Index>
struct Dims {
  using index_type = Index;
  Index c, h, w, k, r, s, oh, ow, stride, pad;
};
using Dims32 = Dims<int>;
template <class Index>
__host__ __device__ inline Dims<Index> dims(const Conv2dParams& p) {
  return {static_cast<Index>(p.c),
          static_cast<Index>(p.h),
          static_cast<Index>(p.w),
          static_cast<Index>(p.k),
          static_cast<Index>(p.r),
          static_cast<Index>(p.s),
          static_cast<Index>(p.oh),
          static_cast<Index>(p.ow),
          static_cast<Index>(p.stride),
          static_cast<Index>(p.padding)};
}
__host__ __device__ inline Dims32 dims32(const Conv2dParams& p) { return dims<int>(p); }

// acc[q][4 * j4 + e] += v[q] * weights (e = x, y, z, w) for the q-th pixel: one float4 of weights
// feeds 4 x kPixelsPerThread FMAs.
template <int Channels>
__device__ inline void fma_tile(float (&acc)[kPixelsPerThread][Channels],
                                const float (&v)[kPixelsPerThread],
                                const float4* weights) {
#pragma unroll
  for (int j4 = 0; j4 < Channels / 4; ++j4) {
    const float4 wv = weights[j4];
#pragma unroll
    for (int q = 0; q < kPixelsPerThread; ++q) {
      acc[q][4 * j4 + 0] = fmaf(v[q], wv.x, acc[q][4 * j4 + 0]);
      acc[q][4 * j4 + 1] = fmaf(v[q], wv.y, acc[q][4 * j4 + 1]);
      acc[q][4 * j4 + 2] = fmaf(v[q], wv.z, acc[q][4 * j4 + 2]);
      acc[q][4 * j4 + 3] = fmaf(v[q], wv.w, acc[q][4 * j4 + 3]);
    }
  }
}

// w [K, C, R, S] channels [c0, c0 + cc) -> ws [k][r][s][Channels] (zeros past cc): the layout
// of the input-gradient kernels, so one tap's channels are Channels / 4 aligned float4s.
template <int Channels>
__device__ inline void stage_weights_by_input_channel(
    const float* w, int K, int C, int rs, int c0, int cc, float* ws) {
  for (int i = threadIdx.x; i < K * rs * Channels; i += blockDim.x) {
    const int t = i / Channels, j = i % Channels;  // t = (k * R + r) * S + s
    ws[i] = j < cc ? w[(t / rs * C + c0 + j) * rs + t % rs] : 0.f;
  }
}

// Writes a thread's tile: channel j's kPixelsPerThread columns from col0 of one row, where
// channel j's row starts at row + j * plane; channels past `count`, columns past `cols` are
// padding. `relu`: the fused ReLU's epilogue.
template <int Channels>
__device__ inline void store_tile(const float (&acc)[kPixelsPerThread][Channels],
                                  float* row,
                                  int plane,
                                  int count,
                                  int col0,
                                  int cols,
                                  bool relu = false) {
#pragma unroll
  for (int j = 0; j < Channels; ++j) {
    if (j >= count) continue;
#pragma unroll
    for (int q = 0; q < kPixelsPerThread; ++q) {
      if (col0 + q < cols) row[j * plane + col0 + q] = relu_if(relu, acc[q][j]);
    }
  }
}

// y for output channels [k0, k0 + Channels) at kPixelsPerThread consecutive columns of one output
// row per thread, any stride and padding: each input value loaded feeds Channels FMAs and each
// float4 of weights 4 x kPixelsPerThread. Weights sit in shared memory as [c][r][s][Channels]
// (zeros past p.k), so a tap's weights are Channels / 4 aligned 128-bit loads. 32-bit indices:
// the host sends tensors past 2^30 elements to the plain kernels (fits_32_bits).
template <int Channels>
__global__ void __launch_bounds__(kConvThreads) conv2d_forward_kernel(
    Conv2dParams p, const float* x, const float* w, const float* b, float* y) {
  constexpr int P = kPixelsPerThread;
  extern __shared__ float ws[];
  const auto [C, H, W, K, R, S, OH, OW, stride, pad] = dims32(p);
  const int k0 = static_cast<int>(blockIdx.y) * Channels;
  const int kc = min(Channels, K - k0);
  const int crs = C * R * S;
  for (int i = threadIdx.x; i < crs * Channels; i += blockDim.x) {
    const int t = i / Channels, j = i % Channels;
    ws[i] = j < kc ? w[(k0 + j) * crs + t] : 0.f;
  }
  __syncthreads();
  const float4* ws4 = reinterpret_cast<const float4*>(ws);
  const int tiles = (OW + P - 1) / P;
  const int items = static_cast<int>(p.n) * OH * tiles;
  for (int item = blockIdx.x * blockDim.x + threadIdx.x; item < items;
       item += blockDim.x * gridDim.x) {
    const int n = item / (OH * tiles), oh = item / tiles % OH, ow0 = item % tiles * P;
    float acc[P][Channels];
#pragma unroll
    for (int j = 0; j < Channels; ++j) {
      const float init = (b != nullptr && j < kc) ? b[k0 + j] : 0.f;
#pragma unroll
      for (int q = 0; q < P; ++q) acc[q][j] = init;
    }
    const float* image = x + n * C * H * W;
    for (int c = 0; c < C; ++c) {
      for (int r = 0; r < R; ++r) {
        const int ih = oh * stride - pad + r;
        if (ih < 0 || ih >= H) continue;
        const float* row = image + (c * H + ih) * W;
        const float4* taps = ws4 + (c * R + r) * S * (Channels / 4);
        for (int s = 0; s < S; ++s) {
          float v[P];
#pragma unroll
          for (int q = 0; q < P; ++q) {
            const int iw = (ow0 + q) * stride - pad + s;
            v[q] = (iw >= 0 && iw < W) ? row[iw] : 0.f;
          }
          fma_tile<Channels>(acc, v, taps + s * (Channels / 4));
        }
      }
    }
    store_tile<Channels>(acc, y + ((n * K + k0) * OH + oh) * OW, OH * OW, kc, ow0, OW, p.relu);
  }
}

// dx for input channels [c0, c0 + Channels) at kPixelsPerThread consecutive columns of one input
// row per thread: the sum over the outputs whose window covers each pixel (oh * stride = ih +
// padding - r), in the order r, s, k. Weights in shared memory as [k][r][s][Channels]. y: the
// fused ReLU's output (masks dy), or null.
template <int Channels>
__global__ void __launch_bounds__(kConvThreads) conv2d_input_grad_kernel(
    Conv2dParams p, const float* w, const float* y, const float* dy, float* dx) {
  constexpr int P = kPixelsPerThread;
  extern __shared__ float ws[];
  const auto [C, H, W, K, R, S, OH, OW, stride, pad] = dims32(p);
  const int c0 = static_cast<int>(blockIdx.y) * Channels;
  const int cc = min(Channels, C - c0);
  stage_weights_by_input_channel<Channels>(w, K, C, R * S, c0, cc, ws);
  __syncthreads();
  const float4* ws4 = reinterpret_cast<const float4*>(ws);
  const int tiles = (W + P - 1) / P;
  const int items = static_cast<int>(p.n) * H * tiles;
  for (int item = blockIdx.x * blockDim.x + threadIdx.x; item < items;
       item += blockDim.x * gridDim.x) {
    const int n = item / (H * tiles), ih = item / tiles % H, iw0 = item % tiles * P;
    float acc[P][Channels] = {};
    const float* grads = dy + n * K * OH * OW;
    for (int r = 0; r < R; ++r) {
      const int th = ih + pad - r;
      if (th < 0 || th % stride != 0 || th / stride >= OH) continue;
      const int oh = th / stride;
      for (int s = 0; s < S; ++s) {
        int ow[P];
        bool valid[P];
#pragma unroll
        for (int q = 0; q < P; ++q) {
          const int tw = iw0 + q + pad - s;
          valid[q] = tw >= 0 && tw % stride == 0 && tw / stride < OW;
          ow[q] = valid[q] ? tw / stride : 0;
        }
        for (int k = 0; k < K; ++k) {
          const float* row = grads + (k * OH + oh) * OW;
          const float* y_row = mask_row(y, dy, row);
          float v[P];
#pragma unroll
          for (int q = 0; q < P; ++q) v[q] = valid[q] ? masked_grad(row, y_row, ow[q]) : 0.f;
          fma_tile<Channels>(acc, v, ws4 + ((k * R + r) * S + s) * (Channels / 4));
        }
      }
    }
    store_tile<Channels>(acc, dx + ((n * C + c0) * H + ih) * W, H * W, cc, iw0, W);
  }
}

// dx for inputs of at most 4 channels (the image: conv1's input gradient, which every attribution
// row needs), stride 1, kernels up to kMaxWindowWidth wide: 4 columns x 4 channels a thread; per
// (r, k) the P + S - 1 values of one dy row that the columns' S taps share are loaded once (a
// sliding window), then S float4s of weights. The 8/16-channel kernel would leave 5 or 13 of its
// accumulators idle here. Weights in shared memory as [k][r][s][4].
__global__ void __launch_bounds__(kConvThreads) conv2d_input_grad_narrow_kernel(
    Conv2dParams p, const float* w, const float* y, const float* dy, float* dx) {
  constexpr int P = kPixelsPerThread, CH = 4, SM = kMaxWindowWidth;
  extern __shared__ float ws[];
  const auto [C, H, W, K, R, S, OH, OW, stride, pad] = dims32(p);
  stage_weights_by_input_channel<CH>(w, K, C, R * S, 0, C, ws);
  __syncthreads();
  const float4* ws4 = reinterpret_cast<const float4*>(ws);
  const int tiles = (W + P - 1) / P;
  const int items = static_cast<int>(p.n) * H * tiles;
  for (int item = blockIdx.x * blockDim.x + threadIdx.x; item < items;
       item += blockDim.x * gridDim.x) {
    const int n = item / (H * tiles), ih = item / tiles % H, iw0 = item % tiles * P;
    float acc[P][CH] = {};
    const float* grads = dy + n * K * OH * OW;
    for (int r = 0; r < R; ++r) {
      const int oh = ih + pad - r;  // stride 1
      if (oh < 0 || oh >= OH) continue;
      for (int k = 0; k < K; ++k) {
        const float* row = grads + (k * OH + oh) * OW;
        const float* y_row = mask_row(y, dy, row);
        // window[j] = dy at column iw0 + pad - (SM - 1) + j: column q's tap s is j = q - s + SM -
        // 1, so only j >= SM - S is ever used.
        float window[P + SM - 1];
#pragma unroll
        for (int j = 0; j < P + SM - 1; ++j) {
          const int ow = iw0 + pad - (SM - 1) + j;
          window[j] = (j >= SM - S && ow >= 0 && ow < OW) ? masked_grad(row, y_row, ow) : 0.f;
        }
        const float4* taps = ws4 + (k * R + r) * S;
#pragma unroll
        for (int s = 0; s < SM; ++s) {
          if (s >= S) continue;
          const float4 wv = taps[s];
#pragma unroll
          for (int q = 0; q < P; ++q) {
            const float v = window[q - s + SM - 1];
            acc[q][0] = fmaf(v, wv.x, acc[q][0]);
            acc[q][1] = fmaf(v, wv.y, acc[q][1]);
            acc[q][2] = fmaf(v, wv.z, acc[q][2]);
            acc[q][3] = fmaf(v, wv.w, acc[q][3]);
          }
        }
      }
    }
    store_tile<CH>(acc, dx + (n * C * H + ih) * W, H * W, C, iw0, W);
  }
}

constexpr int kDwChannels = 8;  // output channels a thread of the tiled dw kernel accumulates

// dw[k0, k0 + 8)[c][r][0, S) over this block's share of the output positions, stride 1: a thread
// takes kPixelsPerThread consecutive output columns at a time, loads the P + S - 1 input values
// they share (a sliding window) and 8 dy values per column, and does 8 x S FMAs per column. One
// (c, r, block of 8 k) per blockIdx.x, the share of positions per blockIdx.y; out
// [split][k][c][r*s].
__global__ void __launch_bounds__(kThreads) conv2d_weight_grad_tiled_kernel(
    Conv2dParams p, const float* x, const float* dy, int per_split, float* out) {
  constexpr int P = kPixelsPerThread, KB = kDwChannels, SM = kMaxWindowWidth;
  __shared__ float shared[kWarp];
  const auto [C, H, W, K, R, S, OH, OW, stride, pad] = dims32(p);
  const int k_blocks = (K + KB - 1) / KB;
  const int kb = static_cast<int>(blockIdx.x) % k_blocks;
  const int r = static_cast<int>(blockIdx.x) / k_blocks % R;
  const int c = static_cast<int>(blockIdx.x) / (k_blocks * R);
  const int k0 = kb * KB, kc = min(KB, K - k0);
  const int tiles = (OW + P - 1) / P;
  const int items = static_cast<int>(p.n) * OH * tiles;
  const int begin = static_cast<int>(blockIdx.y) * per_split;
  const int end = min(items, begin + per_split);
  float acc[KB][SM] = {};
  for (int item = begin + threadIdx.x; item < end; item += blockDim.x) {
    const int n = item / (OH * tiles), oh = item / tiles % OH, ow0 = item % tiles * P;
    const int ih = oh * stride - pad + r;
    if (ih < 0 || ih >= H) continue;
    const float* row = x + ((n * C + c) * H + ih) * W;
    float window[P + SM - 1];
#pragma unroll
    for (int j = 0; j < P + SM - 1; ++j) {
      const int iw = ow0 - pad + j;
      window[j] = (j < P + S - 1 && iw >= 0 && iw < W) ? row[iw] : 0.f;
    }
    const float* grads = dy + ((n * K + k0) * OH + oh) * OW + ow0;
#pragma unroll
    for (int q = 0; q < P; ++q) {
      if (ow0 + q >= OW) continue;  // not break: a fully unrolled loop keeps acc in registers
      float d[KB];
#pragma unroll
      for (int j = 0; j < KB; ++j) d[j] = j < kc ? grads[j * OH * OW + q] : 0.f;
#pragma unroll
      for (int s = 0; s < SM; ++s) {
        if (s >= S) continue;
#pragma unroll
        for (int j = 0; j < KB; ++j) acc[j][s] = fmaf(d[j], window[q + s], acc[j][s]);
      }
    }
  }
  float* o = out + blockIdx.y * (K * C * R * S);
#pragma unroll
  for (int j = 0; j < KB; ++j) {
#pragma unroll
    for (int s = 0; s < SM; ++s) {
      if (j >= kc || s >= S) continue;  // the same for the whole block: block_sum may sync
      const float total = block_sum(acc[j][s], shared);
      if (threadIdx.x == 0) o[((k0 + j) * C + c) * R * S + r * S + s] = total;
    }
  }
}

// db[k] over positions in this block's share: out [split][k].
__global__ void conv2d_bias_grad_kernel(Conv2dParams p,
                                        const float* dy,
                                        i64 per_split,
                                        float* out) {
  __shared__ float shared[kWarp];
  const i64 k = blockIdx.x, plane = p.oh * p.ow, positions = p.n * plane;
  const i64 begin = blockIdx.y * per_split, end = min(positions, begin + per_split);
  float acc = 0.f;
  for (i64 q = begin + threadIdx.x; q < end; q += blockDim.x) {
    acc += dy[(q / plane * p.k + k) * plane + q % plane];
  }
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) out[blockIdx.y * p.k + k] = acc;
}

// The implicit GEMMs' operands (gemm.cuh): the TF32 path's (Index = int: fits_32_bits holds)
// and the float32 fallbacks' for shapes the direct kernels do not take (int or i64).
// x under tap `tap` = (c, r, s) of output position `pos` = (n, oh, ow), 0 in the padding: the
// unfolded input (im2col) both the forward and the weight gradient read, never stored.
template <class Index>
__device__ inline float unfolded_input(const Dims<Index>& d, const float* x, Index pos, Index tap) {
  const Index plane = d.oh * d.ow, img = pos / plane, oh = pos % plane / d.ow, ow = pos % d.ow;
  const Index rs = d.r * d.s, c = tap / rs, r = tap % rs / d.s, s = tap % d.s;
  const Index ih = oh * d.stride - d.pad + r, iw = ow * d.stride - d.pad + s;
  return ih >= 0 && ih < d.h && iw >= 0 && iw < d.w ? x[((img * d.c + c) * d.h + ih) * d.w + iw]
                                                    : 0.f;
}

// Forward: C(pixel (n, oh, ow), k) = sum over (c, r, s) of x at the tap * w[k][c][r][s].
template <class Index>
struct ForwardOperands {
  Dims<Index> d;
  const float *x, *w, *bias;
  float* y;
  bool relu;
  __device__ bool a_k_inner() const { return false; }  // consecutive pixels: consecutive x
  __device__ bool b_n_inner() const { return false; }
  __device__ float a(Index m, Index k) const { return unfolded_input(d, x, m, k); }
  __device__ float b(Index k, Index n) const { return w[n * d.c * d.r * d.s + k]; }
  __device__ void store(Index m, Index n, Index, float v) const {
    const Index plane = d.oh * d.ow;
    y[(m / plane * d.k + n) * plane + m % plane] =
        relu_if(relu, v + (bias != nullptr ? bias[n] : 0.f));
  }
};

// Input gradient: C(pixel (n, ih, iw), c) = sum over (k, r, s) of dy at the output whose window
// puts tap (r, s) on the pixel (masked by the fused ReLU's y when there is one) * w[k][c][r][s].
template <class Index>
struct InputGradOperands {
  Dims<Index> d;
  const float *w, *y, *dy;
  float* dx;
  __device__ bool a_k_inner() const { return false; }
  __device__ bool b_n_inner() const { return false; }
  __device__ float a(Index m, Index k) const {
    const Index plane = d.h * d.w, img = m / plane, ih = m % plane / d.w, iw = m % d.w;
    const Index rs = d.r * d.s, ko = k / rs, r = k % rs / d.s, s = k % d.s;
    const Index th = ih + d.pad - r, tw = iw + d.pad - s;
    if (th < 0 || tw < 0 || th % d.stride != 0 || tw % d.stride != 0) return 0.f;
    const Index oh = th / d.stride, ow = tw / d.stride;
    if (oh >= d.oh || ow >= d.ow) return 0.f;
    return masked_grad(dy, y, ((img * d.k + ko) * d.oh + oh) * d.ow + ow);
  }
  __device__ float b(Index k, Index n) const {
    const Index rs = d.r * d.s;
    return w[(k / rs * d.c + n) * rs + k % rs];
  }
  __device__ void store(Index m, Index n, Index, float v) const {
    const Index plane = d.h * d.w;
    dx[(m / plane * d.c + n) * plane + m % plane] = v;
  }
};

// Weight gradient: C(k, (c, r, s)) = sum over output positions (n, oh, ow) of dy * x at the tap;
// split z writes its share to out [z][k][c * r * s].
template <class Index>
struct WeightGradOperands {
  Dims<Index> d;
  const float *x, *dy;
  float* out;
  __device__ bool a_k_inner() const { return true; }  // consecutive positions: consecutive dy
  __device__ bool b_n_inner() const { return false; }
  __device__ float a(Index m, Index k) const {
    const Index plane = d.oh * d.ow;
    return dy[(k / plane * d.k + m) * plane + k % plane];
  }
  __device__ float b(Index k, Index n) const { return unfolded_input(d, x, k, n); }
  __device__ void store(Index m, Index n, Index split, float v) const {
    const Index crs = d.c * d.r * d.s;
    out[(split * d.k + m) * crs + n] = v;
  }
};

// Work items of the tiled kernels: kPixelsPerThread columns of one row of one image each.
i64 tile_items(i64 n, i64 rows, i64 cols) {
  return n * rows * ((cols + kPixelsPerThread - 1) / kPixelsPerThread);
}

// Whether the tiled kernels' 32-bit indices cover every element of x, y and the weights (2^30:
// a grid-stride step past the last item must not overflow either).
bool fits_32_bits(const Conv2dParams& p) {
  return fits_int_index(std::max({p.n * p.c * p.h * p.w,
                                  p.n * p.k * p.oh * p.ow,
                                  p.k * p.c * p.r * p.s * kChannelsPerThread}));
}

// Whether this call takes the TF32 tensor-core path: asked for, and the 32-bit indices fit.
bool use_tf32(const Conv2dParams& p) {
  // Every GEMM size is at most a tensor's element count, which fits_32_bits bounds by 2^30.
  return matmul_precision() == MatmulPrecision::TF32 && fits_32_bits(p);
}

// One implicit GEMM whose operands make(dims) builds: on the tensor cores when `tf32`, else
// float32 FMAs with int indices where the tensors fit 2^30 elements, i64 beyond.
template <class Make>
void launch_implicit_gemm(cudaStream_t stream,
                          const Conv2dParams& p,
                          bool tf32,
                          i64 m,
                          i64 n,
                          i64 k,
                          i64 splits,
                          i64 k_per_split,
                          Make make) {
  if (tf32) {
    launch_tf32_gemm(stream, make(dims<int>(p)), m, n, k, splits, k_per_split);
  } else if (fits_32_bits(p)) {
    launch_gemm_kernel<int>(stream, make(dims<int>(p)), m, n, k, splits, k_per_split);
  } else {
    launch_gemm_kernel<i64>(stream, make(dims<i64>(p)), m, n, k, splits, k_per_split);
  }
}

// Runs a split reduction: kernel(per_split, out) writes [splits, outputs] partials, then they are
// added in order into `result` (directly when there is one split).
template <class Launch>
void split_reduce(CudaBackend& backend, i64 splits, i64 outputs, float* result, Launch launch) {
  if (splits == 1) {
    launch(result);
    return;
  }
  DeviceScratch partial(backend, static_cast<std::size_t>(splits * outputs) * sizeof(float));
  launch(partial.as<float>());
  launch_sum_dim(backend.stream(), partial.as<float>(), 1, splits, outputs, result);
}

}  // namespace

void CudaBackend::conv2d_forward(
    const Conv2dParams& p, const float* x, const float* w, const float* b, float* y) {
  const i64 pixels = p.n * p.oh * p.ow;
  if (pixels == 0 || p.k == 0) return;
  const i64 crs = p.c * p.r * p.s;
  const bool tf32 = use_tf32(p);
  if (tf32 || crs * kChannelsPerThread > kSharedFloats || !fits_32_bits(p)) {
    // TF32, or weights too big for the direct kernel's shared memory, or tensors past 2^30
    launch_implicit_gemm(stream(), p, tf32, pixels, p.k, crs, 1, crs, [&](auto d) {
      return ForwardOperands<typename decltype(d)::index_type>{d, x, w, b, y, p.relu};
    });
    check_launch(stream(), "conv2d_forward gemm", {p.n, p.c, p.h, p.w, p.k, p.r, p.s});
    return;
  }
  // 8 channels a thread when the layer has no more (conv1's 6): no idle accumulators
  const int channels = p.k <= 8 ? 8 : kChannelsPerThread;
  const i64 items = tile_items(p.n, p.oh, p.ow);
  const dim3 grid(grid_for(items, kConvThreads),
                  static_cast<unsigned>((p.k + channels - 1) / channels));
  const std::size_t shared = static_cast<std::size_t>(channels * crs) * sizeof(float);
  if (channels == 8) {
    conv2d_forward_kernel<8><<<grid, kConvThreads, shared, stream()>>>(p, x, w, b, y);
  } else {
    conv2d_forward_kernel<kChannelsPerThread>
        <<<grid, kConvThreads, shared, stream()>>>(p, x, w, b, y);
  }
  check_launch(stream(), "conv2d_forward", {p.n, p.c, p.h, p.w, p.k, p.r, p.s});
}

void CudaBackend::conv2d_backward(const Conv2dParams& p,
                                  const float* x,
                                  const float* w,
                                  const float* y,
                                  const float* dy,
                                  float* dx,
                                  float* dw,
                                  float* db) {
  const i64 positions = p.n * p.oh * p.ow, rs = p.r * p.s;
  // The fused ReLU: when only dx is wanted (attribution), its kernels mask dy as they read it.
  // dw and db read each dy value only a few times per thread (a masked load would halve their
  // FMAs per load), so training masks dy once into scratch, as the separate relu would.
  const float* mask = nullptr;
  std::optional<DeviceScratch> masked;
  if (p.relu && dw == nullptr && db == nullptr) {
    mask = y;
  } else if (p.relu) {
    masked.emplace(*this, static_cast<std::size_t>(positions * p.k) * sizeof(float));
    relu_backward(y, dy, masked->as<float>(), positions * p.k);
    dy = masked->as<float>();
  }
  const bool tf32 = use_tf32(p);
  if (dx != nullptr) {
    const i64 pixels = p.n * p.h * p.w;
    if (positions == 0 || p.k == 0) {
      fill(dx, 0.f, pixels * p.c);
    } else if (pixels > 0 && p.c > 0 &&
               (tf32 || p.k * rs * kChannelsPerThread > kSharedFloats || !fits_32_bits(p))) {
      launch_implicit_gemm(stream(), p, tf32, pixels, p.c, p.k * rs, 1, p.k * rs, [&](auto d) {
        return InputGradOperands<typename decltype(d)::index_type>{d, w, mask, dy, dx};
      });
      check_launch(stream(), "conv2d_backward dx gemm", {p.n, p.c, p.h, p.w, p.k, p.r, p.s});
    } else if (pixels > 0 && p.c <= 4 && p.stride == 1 && p.s <= kMaxWindowWidth) {
      const i64 items = tile_items(p.n, p.h, p.w);
      const std::size_t shared = static_cast<std::size_t>(4 * p.k * rs) * sizeof(float);
      conv2d_input_grad_narrow_kernel<<<grid_for(items, kConvThreads),
                                        kConvThreads,
                                        shared,
                                        stream()>>>(p, w, mask, dy, dx);
      check_launch(stream(), "conv2d_backward dx", {p.n, p.c, p.h, p.w, p.k, p.r, p.s});
    } else if (pixels > 0 && p.c > 0) {
      const int channels = p.c <= 8 ? 8 : kChannelsPerThread;
      const i64 items = tile_items(p.n, p.h, p.w);
      const dim3 grid(grid_for(items, kConvThreads),
                      static_cast<unsigned>((p.c + channels - 1) / channels));
      const std::size_t shared = static_cast<std::size_t>(channels * p.k * rs) * sizeof(float);
      if (channels == 8) {
        conv2d_input_grad_kernel<8><<<grid, kConvThreads, shared, stream()>>>(p, w, mask, dy, dx);
      } else {
        conv2d_input_grad_kernel<kChannelsPerThread>
            <<<grid, kConvThreads, shared, stream()>>>(p, w, mask, dy, dx);
      }
      check_launch(stream(), "conv2d_backward dx", {p.n, p.c, p.h, p.w, p.k, p.r, p.s});
    }
  }
  const bool dw_tiled = p.stride == 1 && p.s <= kMaxWindowWidth && fits_32_bits(p) && !tf32;
  if (dw != nullptr && p.k * p.c * rs > 0 && !dw_tiled) {
    // TF32, strides above 1, kernels wider than 8, tensors past 2^30: an implicit GEMM over the
    // positions, split into shares added in order
    const i64 crs = p.c * rs;
    const i64 tiles = (p.k + kTileM - 1) / kTileM * ((crs + kTileN - 1) / kTileN);
    const i64 splits = choose_splits(tiles, positions, /*min_per_split=*/256);
    const i64 per_split =
        std::max<i64>(((positions + splits - 1) / splits + kTileK - 1) / kTileK * kTileK, kTileK);
    const i64 used = std::max<i64>((positions + per_split - 1) / per_split, 1);
    split_reduce(*this, used, p.k * crs, dw, [&](float* out) {
      launch_implicit_gemm(stream(), p, tf32, p.k, crs, positions, used, per_split, [&](auto d) {
        return WeightGradOperands<typename decltype(d)::index_type>{d, x, dy, out};
      });
      check_launch(stream(), "conv2d_backward dw gemm", {p.n, p.c, p.h, p.w, p.k, p.r, p.s});
    });
  } else if (dw != nullptr && p.k * p.c * rs > 0) {
    const i64 blocks = (p.k + kDwChannels - 1) / kDwChannels * p.c * p.r;
    const i64 items = tile_items(p.n, p.oh, p.ow);
    const i64 splits = choose_splits(blocks, items, /*min_per_split=*/512);
    const i64 per_split = std::max<i64>((items + splits - 1) / splits, 1);
    const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(splits));
    split_reduce(*this, splits, p.k * p.c * rs, dw, [&](float* out) {
      conv2d_weight_grad_tiled_kernel<<<grid, kThreads, 0, stream()>>>(
          p, x, dy, static_cast<int>(per_split), out);
      check_launch(stream(), "conv2d_backward dw", {p.n, p.c, p.h, p.w, p.k, p.r, p.s});
    });
  }
  if (db != nullptr && p.k > 0) {
    const i64 splits = choose_splits(p.k, positions, /*min_per_split=*/4096);
    const i64 per_split = std::max<i64>((positions + splits - 1) / splits, 1);
    split_reduce(*this, splits, p.k, db, [&](float* out) {
      conv2d_bias_grad_kernel<<<dim3(static_cast<unsigned>(p.k), static_cast<unsigned>(splits)),
                                kThreads,
                                0,
                                stream()>>>(p, dy, per_split, out);
      check_launch(stream(), "conv2d_backward db", {p.n, p.k, p.oh, p.ow});
    });
  }
}

// conv2d_relu_pool composes the conv (ReLU fused) and max_pool2d kernels through a scratch conv
// output: the fusion pays on the CPU, where that output falls out of the cache between the ops.
// Each step is the separate op's kernel, so the same values.
void CudaBackend::conv2d_relu_pool_forward(const Conv2dParams& p,
                                           const float* x,
                                           const float* w,
                                           const float* b,
                                           float* y,
                                           std::int32_t* indices) {
  const Pool2dParams pool = make_pool2d_params(p.n, p.k, p.oh, p.ow, 2, 2, 0);
  DeviceScratch conv(*this, static_cast<std::size_t>(p.n * p.k * p.oh * p.ow) * sizeof(float));
  conv2d_forward(p, x, w, b, conv.as<float>());
  max_pool2d_forward(pool, conv.as<float>(), y, indices);
}

void CudaBackend::conv2d_relu_pool_backward(const Conv2dParams& p,
                                            const float* x,
                                            const float* w,
                                            const float* y,
                                            const std::int32_t* indices,
                                            const float* dy,
                                            float* dx,
                                            float* dw,
                                            float* db) {
  const Pool2dParams pool = make_pool2d_params(p.n, p.k, p.oh, p.ow, 2, 2, 0);
  const i64 pooled = pool.n * pool.c * pool.oh * pool.ow;
  // The ReLU's mask on the pooled dy (the pooled y is the conv output at each window's maximum),
  // then the pool's backward, then the conv's without its ReLU.
  DeviceScratch masked(*this, static_cast<std::size_t>(pooled) * sizeof(float));
  relu_backward(y, dy, masked.as<float>(), pooled);
  DeviceScratch unpooled(*this, static_cast<std::size_t>(p.n * p.k * p.oh * p.ow) * sizeof(float));
  max_pool2d_backward(pool, masked.as<float>(), indices, unpooled.as<float>());
  Conv2dParams plain = p;
  plain.relu = false;
  conv2d_backward(plain, x, w, nullptr, unpooled.as<float>(), dx, dw, db);
}

}  // namespace gradlens::cuda
