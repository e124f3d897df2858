// One torch.optim.SGD step in place on the GPU, with the CPU twin's fused multiply-adds (fmaf) so
// both round alike: g = grad + wd * p; buf = first ? g : momentum * buf + (1 - dampening) * g;
// g = nesterov ? g + momentum * buf : buf; p -= lr * g.
#include "gradlens/kernels/cuda/cuda_backend.cuh"
#include "gradlens/kernels/cuda/launch.cuh"

namespace gradlens::cuda {

namespace {

struct SgdStep {
  float lr, wd, momentum, keep;
  bool first, nesterov;
  float* param;
  const float* grad;
  float* buf;
  __device__ void operator()(i64 i) const {
    float g = wd != 0.f ? fmaf(wd, param[i], grad[i]) : grad[i];
    if (momentum != 0.f) {
      const float b = first ? g : fmaf(keep, g, __fmul_rn(momentum, buf[i]));
      buf[i] = b;
      g = nesterov ? fmaf(momentum, b, g) : b;
    }
    param[i] = fmaf(lr, g, param[i]);
  }
};

}  // namespace

void CudaBackend::sgd_update(
    const SgdParams& p, float* param, const float* grad, float* momentum_buf, i64 n) {
  const float keep = static_cast<float>(1.0 - static_cast<double>(p.dampening));
  launch_map(stream(),
             "sgd_update",
             n,
             SgdStep{-p.lr,
                     p.weight_decay,
                     p.momentum,
                     keep,
                     p.first_step,
                     p.nesterov,
                     param,
                     grad,
                     momentum_buf});
}

}  // namespace gradlens::cuda
