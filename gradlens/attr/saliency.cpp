// Saliency: attr = |grad| (abs) or grad, grad = d f_t(x) / dx.
#include "gradlens/attr/saliency.h"

#include <vector>

#include "gradlens/attr/gradient.h"
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"

namespace gradlens::attr {

Attributions Saliency::attribute(const Tensor& inputs,
                                 const Targets& targets,
                                 const Tensor& /*baselines*/) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) > 0,
                 "[saliency] inputs must be a non-empty batch");
  NoGradGuard no_grad;
  const Tensor grads = chunked_gradients(forward_, planner_, inputs, targets);
  Attributions out;
  out.values = options_.abs ? abs(grads) : grads;
  return out;
}

}  // namespace gradlens::attr
