// InputXGradient: attr = x * grad, grad = d f_t(x) / dx.
#include "attr/input_x_gradient.h"

#include "attr/gradient.h"
#include "autograd/error.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace gradlens::attr {

Attributions InputXGradient::attribute(const Tensor& inputs,
                                       std::span<const std::int64_t> targets,
                                       const Tensor& /*baselines*/) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) > 0,
                 "[input_x_gradient] inputs must be a non-empty batch");
  NoGradGuard no_grad;
  Attributions out;
  out.values = mul(inputs, chunked_gradients(forward_, planner_, inputs, targets));
  return out;
}

}  // namespace gradlens::attr
