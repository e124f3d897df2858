// max_pool2d on the GPU: one output per thread, the first maximum in scan order wins and a NaN
// always wins (as the CPU twin and PyTorch). Backward gathers rather than scatters: each input
// sums dy over the windows that chose it, in output order, so overlapping windows need no atomics.
#include "gradlens/kernels/cuda/cuda_backend.cuh"
#include "gradlens/kernels/cuda/launch.cuh"

namespace gradlens::cuda {

namespace {

// Sizes in the launch's index type (int below 2^30 elements: 32-bit divisions).
template <class I>
struct PoolDims {
  I h, w, oh, ow, kernel, stride, padding;
  __device__ explicit PoolDims(const Pool2dParams& p)
      : h(static_cast<I>(p.h)),
        w(static_cast<I>(p.w)),
        oh(static_cast<I>(p.oh)),
        ow(static_cast<I>(p.ow)),
        kernel(static_cast<I>(p.kernel)),
        stride(static_cast<I>(p.stride)),
        padding(static_cast<I>(p.padding)) {}
};

struct PoolForward {
  Pool2dParams p;
  const float* x;
  float* y;
  std::int32_t* indices;
  template <class I>
  __device__ void operator()(I i) const {
    const PoolDims<I> d(p);
    const I ow = i % d.ow, oh = i / d.ow % d.oh, plane = i / (d.ow * d.oh);
    const float* xp = x + plane * d.h * d.w;
    const I h0 = oh * d.stride - d.padding, w0 = ow * d.stride - d.padding;
    const I h_lo = max(h0, I{0}), h_hi = min(h0 + d.kernel, d.h);
    const I w_lo = max(w0, I{0}), w_hi = min(w0 + d.kernel, d.w);
    float best = -INFINITY;
    I best_at = h_lo * d.w + w_lo;
    for (I ih = h_lo; ih < h_hi; ++ih) {
      for (I iw = w_lo; iw < w_hi; ++iw) {
        const float v = xp[ih * d.w + iw];
        if (v > best || isnan(v)) {
          best = v;
          best_at = ih * d.w + iw;
        }
      }
    }
    y[i] = best;
    indices[i] = static_cast<std::int32_t>(best_at);
  }
};

// What both backward kernels read and write.
struct PoolGradArgs {
  Pool2dParams p;
  const float* dy;
  const std::int32_t* indices;
  float* dx;
};

struct PoolBackward : PoolGradArgs {
  template <class I>
  __device__ void operator()(I i) const {
    const PoolDims<I> d(p);
    const I iw = i % d.w, ih = i / d.w % d.h, plane = i / (d.w * d.h);
    const I at = ih * d.w + iw;
    const I base = plane * d.oh * d.ow;
    // Windows oh with oh * stride - padding <= ih < oh * stride - padding + kernel.
    const I oh_lo = max(I{0}, (ih + d.padding - d.kernel + d.stride) / d.stride);
    const I oh_hi = min(d.oh - 1, (ih + d.padding) / d.stride);
    const I ow_lo = max(I{0}, (iw + d.padding - d.kernel + d.stride) / d.stride);
    const I ow_hi = min(d.ow - 1, (iw + d.padding) / d.stride);
    float acc = 0.f;
    for (I oh = oh_lo; oh <= oh_hi; ++oh) {
      for (I ow = ow_lo; ow <= ow_hi; ++ow) {
        const I j = base + oh * d.ow + ow;
        if (indices[j] == at) acc += dy[j];
      }
    }
    dx[i] = acc;
  }
};

// Windows that tile the plane (kernel == stride, no padding): one thread a block of kernel x kernel
// inputs, the window's own and, past the last window, the uncovered tail (zeros). A quarter of the
// threads of PoolBackward for 2x2 windows, and its index arithmetic once a block, not once an
// input.
struct UnpoolTiling : PoolGradArgs {
  template <class I>
  __device__ void operator()(I i) const {
    const PoolDims<I> d(p);
    const I k = d.kernel;
    const I cols = (d.w + k - 1) / k, rows = (d.h + k - 1) / k;  // blocks, the tails included
    const I bw = i % cols, bh = i / cols % rows, plane = i / (cols * rows);
    const bool window = bh < d.oh && bw < d.ow;
    const I j = plane * d.oh * d.ow + bh * d.ow + bw;
    const I chosen = window ? static_cast<I>(indices[j]) : I{-1};
    const float g = window ? dy[j] : 0.f;
    float* out = dx + plane * d.h * d.w;
    for (I ih = bh * k; ih < min(bh * k + k, d.h); ++ih) {
      for (I iw = bw * k; iw < min(bw * k + k, d.w); ++iw) {
        float acc = 0.f;  // as PoolBackward's sum: a -0 dy gives +0
        if (ih * d.w + iw == chosen) acc += g;
        out[ih * d.w + iw] = acc;
      }
    }
  }
};

}  // namespace

void CudaBackend::max_pool2d_forward(const Pool2dParams& p,
                                     const float* x,
                                     float* y,
                                     std::int32_t* indices) {
  launch_map(stream(),
             "max_pool2d_forward",
             p.n * p.c * p.oh * p.ow,
             PoolForward{p, x, y, indices},
             p.n * p.c * p.h * p.w);
}

void CudaBackend::max_pool2d_backward(const Pool2dParams& p,
                                      const float* dy,
                                      const std::int32_t* indices,
                                      float* dx) {
  if (p.kernel == p.stride && p.padding == 0) {
    const i64 blocks = ((p.h + p.kernel - 1) / p.kernel) * ((p.w + p.kernel - 1) / p.kernel);
    launch_map(stream(),
               "max_pool2d_backward",
               p.n * p.c * blocks,
               UnpoolTiling{{p, dy, indices, dx}},
               p.n * p.c * p.h * p.w);
    return;
  }
  launch_map(
      stream(), "max_pool2d_backward", p.n * p.c * p.h * p.w, PoolBackward{{p, dy, indices, dx}});
}

}  // namespace gradlens::cuda
