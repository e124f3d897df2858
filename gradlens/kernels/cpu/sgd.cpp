// One torch.optim.SGD step in place: g = grad + wd * p; buf = first ? g : momentum * buf +
// (1 - dampening) * g; g = nesterov ? g + momentum * buf : buf; p -= lr * g.
#include <cmath>

#include "gradlens/kernels/cpu/common/thread_pool.h"
#include "gradlens/kernels/cpu/cpu_backend.h"

namespace gradlens::cpu::GRADLENS_CPU_ISA {

void CpuBackend::sgd_update(
    const SgdParams& p, float* param, const float* grad, float* momentum_buf, i64 n) {
  // PyTorch's vectorized add(alpha=...) is one fused multiply-add (vec::fmadd); std::fma rounds the
  // same way, and the compiler turns it into vfmadd.
  const float lr = -p.lr, wd = p.weight_decay, momentum = p.momentum;
  const float keep = static_cast<float>(1.0 - static_cast<double>(p.dampening));
  const bool decay = wd != 0.f, first = p.first_step, nesterov = p.nesterov;
  if (momentum == 0.f) {
    thread_pool().parallel_for(0, n, kElementwiseGrain, [=](i64 lo, i64 hi) {
      for (i64 i = lo; i < hi; ++i) {
        const float g = decay ? std::fma(wd, param[i], grad[i]) : grad[i];
        param[i] = std::fma(lr, g, param[i]);
      }
    });
    return;
  }
  float* buf = momentum_buf;
  if (!decay && !first && !nesterov) {
    // The tutorial's case, every step after the first: a branch-free loop the compiler vectorizes
    // (restrict: the three buffers never alias).
    thread_pool().parallel_for(0, n, kElementwiseGrain, [=](i64 lo, i64 hi) {
      float* __restrict pr = param;
      float* __restrict br = buf;
      const float* __restrict gr = grad;
      for (i64 i = lo; i < hi; ++i) {
        const float b = std::fma(keep, gr[i], momentum * br[i]);
        br[i] = b;
        pr[i] = std::fma(lr, b, pr[i]);
      }
    });
    return;
  }
  thread_pool().parallel_for(0, n, kElementwiseGrain, [=](i64 lo, i64 hi) {
    for (i64 i = lo; i < hi; ++i) {
      float g = decay ? std::fma(wd, param[i], grad[i]) : grad[i];
      const float b = first ? g : std::fma(keep, g, momentum * buf[i]);
      buf[i] = b;
      g = nesterov ? std::fma(momentum, b, g) : b;
      param[i] = std::fma(lr, g, param[i]);
    }
  });
}

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA
