// InputXGradient: attr = x * grad, grad = d f_t(x) / dx.
#include "gradlens/attr/input_x_gradient.h"

#include <memory>

#include "gradlens/attr/gradient.h"
#include "gradlens/attr/registry.h"
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"

namespace gradlens::attr {

Attributions InputXGradient::attribute(const Tensor& inputs,
                                       const Targets& targets,
                                       const Tensor& /*baselines*/) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) > 0,
                 "[input_x_gradient] inputs must be a non-empty batch");
  NoGradGuard no_grad;
  Attributions out;
  out.values = mul(inputs, chunked_gradients(forward_, planner_, inputs, targets));
  return out;
}

}  // namespace gradlens::attr

// Its entry in the method registry (registry.h).
namespace gradlens::attr {
namespace {

std::unique_ptr<Attribution> make_input_x_gradient(nn::Module& model, const MethodArgs&) {
  return std::make_unique<InputXGradient>(model);
}

}  // namespace

extern const MethodInfo input_x_gradient_method{
    .name = "input_x_gradient", .captum_class = "InputXGradient", .make = &make_input_x_gradient};

}  // namespace gradlens::attr
