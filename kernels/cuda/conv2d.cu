// conv2d forward and backward, direct (no im2col buffer): the tutorial's convolutions are small
// (3 to 16 channels, 5x5) and the batches large, so each thread computes one pixel for up to 16
// channels at once with the weights of those channels in shared memory, reading each input value
// once per tap instead of once per output channel. dw and db are long reductions over the batch
// and the pixels: blocks take a share of the positions and the shares are added in a fixed order.
// Shapes whose weights do not fit in shared memory take a plain kernel with one output per thread.
#include "kernels/cuda/cuda_backend.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/reduce.cuh"

namespace gradlens::cuda {

namespace {

constexpr int kChannelsPerThread = 16;
constexpr i64 kSharedFloats = 12288;  // 48 KiB of weights per block
constexpr int kConvThreads = 128;
constexpr int kTapsPerBlock = 32;  // weight taps (r, s) one dw block accumulates in registers

__device__ inline i64 x_at(const Conv2dParams& p, i64 n, i64 c, i64 h, i64 w) {
  return ((n * p.c + c) * p.h + h) * p.w + w;
}
__device__ inline i64 y_at(const Conv2dParams& p, i64 n, i64 k, i64 h, i64 w) {
  return ((n * p.k + k) * p.oh + h) * p.ow + w;
}

// y for output channels [k0, k0 + kc), one output pixel (n, oh, ow) per thread.
template <int Channels>
__global__ void __launch_bounds__(kConvThreads) conv2d_forward_kernel(
    Conv2dParams p, const float* x, const float* w, const float* b, float* y) {
  extern __shared__ float ws[];  // [kc][c][r][s]
  const i64 k0 = blockIdx.y * i64{Channels};
  const int kc = static_cast<int>(min(i64{Channels}, p.k - k0));
  const i64 crs = p.c * p.r * p.s;
  for (i64 i = threadIdx.x; i < kc * crs; i += blockDim.x) ws[i] = w[k0 * crs + i];
  __syncthreads();
  const i64 pixels = p.n * p.oh * p.ow;
  for (i64 pix = blockIdx.x * i64{blockDim.x} + threadIdx.x; pix < pixels;
       pix += i64{blockDim.x} * gridDim.x) {
    const i64 n = pix / (p.oh * p.ow), oh = pix / p.ow % p.oh, ow = pix % p.ow;
    float acc[Channels];
#pragma unroll
    for (int j = 0; j < Channels; ++j) {
      acc[j] = (b != nullptr && j < kc) ? b[k0 + j] : 0.f;
    }
    for (i64 c = 0; c < p.c; ++c) {
      for (i64 r = 0; r < p.r; ++r) {
        const i64 ih = oh * p.stride - p.padding + r;
        if (ih < 0 || ih >= p.h) continue;
        for (i64 s = 0; s < p.s; ++s) {
          const i64 iw = ow * p.stride - p.padding + s;
          if (iw < 0 || iw >= p.w) continue;
          const float xv = x[x_at(p, n, c, ih, iw)];
          const float* wt = ws + (c * p.r + r) * p.s + s;
#pragma unroll
          for (int j = 0; j < Channels; ++j) {
            if (j < kc) acc[j] = fmaf(xv, wt[j * crs], acc[j]);
          }
        }
      }
    }
#pragma unroll
    for (int j = 0; j < Channels; ++j) {
      if (j < kc) y[y_at(p, n, k0 + j, oh, ow)] = acc[j];
    }
  }
}

// dx for input channels [c0, c0 + cc), one input pixel (n, ih, iw) per thread: the sum over the
// outputs whose window covers it (oh * stride = ih + padding - r).
template <int Channels>
__global__ void __launch_bounds__(kConvThreads)
    conv2d_input_grad_kernel(Conv2dParams p, const float* w, const float* dy, float* dx) {
  extern __shared__ float ws[];  // [cc][k][r][s]
  const i64 c0 = blockIdx.y * i64{Channels};
  const int cc = static_cast<int>(min(i64{Channels}, p.c - c0));
  const i64 rs = p.r * p.s, krs = p.k * rs;
  for (i64 i = threadIdx.x; i < cc * krs; i += blockDim.x) {
    const i64 j = i / krs, k = i / rs % p.k, t = i % rs;
    ws[i] = w[(k * p.c + c0 + j) * rs + t];
  }
  __syncthreads();
  const i64 pixels = p.n * p.h * p.w;
  for (i64 pix = blockIdx.x * i64{blockDim.x} + threadIdx.x; pix < pixels;
       pix += i64{blockDim.x} * gridDim.x) {
    const i64 n = pix / (p.h * p.w), ih = pix / p.w % p.h, iw = pix % p.w;
    float acc[Channels] = {};
    for (i64 r = 0; r < p.r; ++r) {
      const i64 th = ih + p.padding - r;
      if (th < 0 || th % p.stride != 0 || th / p.stride >= p.oh) continue;
      const i64 oh = th / p.stride;
      for (i64 s = 0; s < p.s; ++s) {
        const i64 tw = iw + p.padding - s;
        if (tw < 0 || tw % p.stride != 0 || tw / p.stride >= p.ow) continue;
        const i64 ow = tw / p.stride;
        for (i64 k = 0; k < p.k; ++k) {
          const float d = dy[y_at(p, n, k, oh, ow)];
          const float* wt = ws + (k * p.r + r) * p.s + s;
#pragma unroll
          for (int j = 0; j < Channels; ++j) {
            if (j < cc) acc[j] = fmaf(d, wt[j * krs], acc[j]);
          }
        }
      }
    }
#pragma unroll
    for (int j = 0; j < Channels; ++j) {
      if (j < cc) dx[x_at(p, n, c0 + j, ih, iw)] = acc[j];
    }
  }
}

// Any shape, one y element per thread, weights read from global memory.
struct PlainForward {
  Conv2dParams p;
  const float *x, *w, *b;
  float* y;
  __device__ void operator()(i64 i) const {
    const i64 ow = i % p.ow, oh = i / p.ow % p.oh, k = i / (p.ow * p.oh) % p.k,
              n = i / (p.ow * p.oh * p.k);
    float acc = b != nullptr ? b[k] : 0.f;
    for (i64 c = 0; c < p.c; ++c) {
      for (i64 r = 0; r < p.r; ++r) {
        const i64 ih = oh * p.stride - p.padding + r;
        if (ih < 0 || ih >= p.h) continue;
        for (i64 s = 0; s < p.s; ++s) {
          const i64 iw = ow * p.stride - p.padding + s;
          if (iw < 0 || iw >= p.w) continue;
          acc = fmaf(x[x_at(p, n, c, ih, iw)], w[((k * p.c + c) * p.r + r) * p.s + s], acc);
        }
      }
    }
    y[i] = acc;
  }
};

// Any shape, one dx element per thread.
struct PlainInputGrad {
  Conv2dParams p;
  const float *w, *dy;
  float* dx;
  __device__ void operator()(i64 i) const {
    const i64 iw = i % p.w, ih = i / p.w % p.h, c = i / (p.w * p.h) % p.c,
              n = i / (p.w * p.h * p.c);
    float acc = 0.f;
    for (i64 k = 0; k < p.k; ++k) {
      for (i64 r = 0; r < p.r; ++r) {
        const i64 th = ih + p.padding - r;
        if (th < 0 || th % p.stride != 0 || th / p.stride >= p.oh) continue;
        for (i64 s = 0; s < p.s; ++s) {
          const i64 tw = iw + p.padding - s;
          if (tw < 0 || tw % p.stride != 0 || tw / p.stride >= p.ow) continue;
          acc = fmaf(dy[y_at(p, n, k, th / p.stride, tw / p.stride)],
                     w[((k * p.c + c) * p.r + r) * p.s + s],
                     acc);
        }
      }
    }
    dx[i] = acc;
  }
};

// dw[k, c, taps t0..t0+32) over positions (n, oh, ow) in this block's share (blockIdx.z); one
// (k, c) pair per blockIdx.x. out [split][k][c][r*s].
__global__ void __launch_bounds__(kThreads) conv2d_weight_grad_kernel(
    Conv2dParams p, const float* x, const float* dy, i64 per_split, float* out) {
  __shared__ float shared[kWarp];
  const i64 k = blockIdx.x / p.c, c = blockIdx.x % p.c;
  const i64 rs = p.r * p.s, t0 = blockIdx.y * i64{kTapsPerBlock};
  const int taps = static_cast<int>(min(i64{kTapsPerBlock}, rs - t0));
  const i64 positions = p.n * p.oh * p.ow;
  const i64 begin = blockIdx.z * per_split, end = min(positions, begin + per_split);
  float acc[kTapsPerBlock] = {};
  for (i64 q = begin + threadIdx.x; q < end; q += blockDim.x) {
    const i64 n = q / (p.oh * p.ow), oh = q / p.ow % p.oh, ow = q % p.ow;
    const float d = dy[y_at(p, n, k, oh, ow)];
#pragma unroll
    for (int t = 0; t < kTapsPerBlock; ++t) {
      if (t >= taps) continue;  // not break: a fully unrolled loop keeps acc in registers
      const i64 r = (t0 + t) / p.s, s = (t0 + t) % p.s;
      const i64 ih = oh * p.stride - p.padding + r, iw = ow * p.stride - p.padding + s;
      if (ih >= 0 && ih < p.h && iw >= 0 && iw < p.w)
        acc[t] = fmaf(d, x[x_at(p, n, c, ih, iw)], acc[t]);
    }
  }
  float* o = out + blockIdx.z * (p.k * p.c * rs) + (k * p.c + c) * rs + t0;
#pragma unroll
  for (int t = 0; t < kTapsPerBlock; ++t) {
    if (t >= taps) break;
    const float total = block_sum(acc[t], shared);
    if (threadIdx.x == 0) o[t] = total;
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
  if (crs * kChannelsPerThread > kSharedFloats) {
    launch_map(stream(), "conv2d_forward", pixels * p.k, PlainForward{p, x, w, b, y});
    return;
  }
  // 8 channels a thread when the layer has no more (conv1's 6): no idle accumulators
  const int channels = p.k <= 8 ? 8 : kChannelsPerThread;
  const dim3 grid(grid_for(pixels, kConvThreads),
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
                                  const float* dy,
                                  float* dx,
                                  float* dw,
                                  float* db) {
  const i64 positions = p.n * p.oh * p.ow, rs = p.r * p.s;
  if (dx != nullptr) {
    const i64 pixels = p.n * p.h * p.w;
    if (positions == 0 || p.k == 0) {
      fill(dx, 0.f, pixels * p.c);
    } else if (p.k * rs * kChannelsPerThread > kSharedFloats) {
      launch_map(stream(), "conv2d_backward dx", pixels * p.c, PlainInputGrad{p, w, dy, dx});
    } else if (pixels > 0 && p.c > 0) {
      const int channels = p.c <= 8 ? 8 : kChannelsPerThread;
      const dim3 grid(grid_for(pixels, kConvThreads),
                      static_cast<unsigned>((p.c + channels - 1) / channels));
      const std::size_t shared = static_cast<std::size_t>(channels * p.k * rs) * sizeof(float);
      if (channels == 8) {
        conv2d_input_grad_kernel<8><<<grid, kConvThreads, shared, stream()>>>(p, w, dy, dx);
      } else {
        conv2d_input_grad_kernel<kChannelsPerThread>
            <<<grid, kConvThreads, shared, stream()>>>(p, w, dy, dx);
      }
      check_launch(stream(), "conv2d_backward dx", {p.n, p.c, p.h, p.w, p.k, p.r, p.s});
    }
  }
  if (dw != nullptr && p.k * p.c * rs > 0) {
    const i64 tap_blocks = (rs + kTapsPerBlock - 1) / kTapsPerBlock;
    const i64 splits = choose_splits(p.k * p.c * tap_blocks, positions, /*min_per_split=*/2048);
    const i64 per_split = std::max<i64>((positions + splits - 1) / splits, 1);
    const dim3 grid(static_cast<unsigned>(p.k * p.c),
                    static_cast<unsigned>(tap_blocks),
                    static_cast<unsigned>(splits));
    split_reduce(*this, splits, p.k * p.c * rs, dw, [&](float* out) {
      conv2d_weight_grad_kernel<<<grid, kThreads, 0, stream()>>>(p, x, dy, per_split, out);
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

}  // namespace gradlens::cuda
