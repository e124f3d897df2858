// max_pool2d on the GPU: one output per thread, the first maximum in scan order wins and a NaN
// always wins (as the CPU twin and PyTorch). Backward gathers rather than scatters: each input
// sums dy over the windows that chose it, in output order, so overlapping windows need no atomics.
#include "gradlens/kernels/cuda/cuda_backend.cuh"
#include "gradlens/kernels/cuda/launch.cuh"

namespace gradlens::cuda {

namespace {

struct PoolForward {
  Pool2dParams p;
  const float* x;
  float* y;
  std::int32_t* indices;
  __device__ void operator()(i64 i) const {
    const i64 ow = i % p.ow, oh = i / p.ow % p.oh, plane = i / (p.ow * p.oh);
    const float* xp = x + plane * p.h * p.w;
    const i64 h0 = oh * p.stride - p.padding, w0 = ow * p.stride - p.padding;
    const i64 h_lo = max(h0, i64{0}), h_hi = min(h0 + p.kernel, p.h);
    const i64 w_lo = max(w0, i64{0}), w_hi = min(w0 + p.kernel, p.w);
    float best = -INFINITY;
    i64 best_at = h_lo * p.w + w_lo;
    for (i64 ih = h_lo; ih < h_hi; ++ih) {
      for (i64 iw = w_lo; iw < w_hi; ++iw) {
        const float v = xp[ih * p.w + iw];
        if (v > best || isnan(v)) {
          best = v;
          best_at = ih * p.w + iw;
        }
      }
    }
    y[i] = best;
    indices[i] = static_cast<std::int32_t>(best_at);
  }
};

struct PoolBackward {
  Pool2dParams p;
  const float* dy;
  const std::int32_t* indices;
  float* dx;
  __device__ void operator()(i64 i) const {
    const i64 iw = i % p.w, ih = i / p.w % p.h, plane = i / (p.w * p.h);
    const i64 at = ih * p.w + iw;
    // Windows oh with oh * stride - padding <= ih < oh * stride - padding + kernel.
    const i64 oh_lo = max(i64{0}, (ih + p.padding - p.kernel + p.stride) / p.stride);
    const i64 oh_hi = min(p.oh - 1, (ih + p.padding) / p.stride);
    const i64 ow_lo = max(i64{0}, (iw + p.padding - p.kernel + p.stride) / p.stride);
    const i64 ow_hi = min(p.ow - 1, (iw + p.padding) / p.stride);
    const i64 base = plane * p.oh * p.ow;
    float acc = 0.f;
    for (i64 oh = oh_lo; oh <= oh_hi; ++oh) {
      for (i64 ow = ow_lo; ow <= ow_hi; ++ow) {
        const i64 j = base + oh * p.ow + ow;
        if (indices[j] == at) acc += dy[j];
      }
    }
    dx[i] = acc;
  }
};

}  // namespace

void CudaBackend::max_pool2d_forward(const Pool2dParams& p,
                                     const float* x,
                                     float* y,
                                     std::int32_t* indices) {
  launch_map(
      stream(), "max_pool2d_forward", p.n * p.c * p.oh * p.ow, PoolForward{p, x, y, indices});
}

void CudaBackend::max_pool2d_backward(const Pool2dParams& p,
                                      const float* dy,
                                      const std::int32_t* indices,
                                      float* dx) {
  launch_map(
      stream(), "max_pool2d_backward", p.n * p.c * p.h * p.w, PoolBackward{p, dy, indices, dx});
}

}  // namespace gradlens::cuda
