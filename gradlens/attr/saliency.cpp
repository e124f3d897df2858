// Saliency: attr = |grad| (abs) or grad, grad = d f_t(x) / dx.
#include "gradlens/attr/saliency.h"

#include <memory>
#include <vector>

#include "gradlens/attr/gradient.h"
#include "gradlens/attr/registry.h"
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

// Its entry in the method registry (registry.h).
namespace gradlens::attr {
namespace {

constexpr OptionSpec kSaliencyOptions[] = {
    {.name = "abs",
     .type = OptionType::Bool,
     .default_value = "true",
     .help = "the gradient's magnitude; false keeps its sign"}};

std::unique_ptr<Attribution> make_saliency(nn::Module& model, const MethodArgs& args) {
  return std::make_unique<Saliency>(model, SaliencyOptions{.abs = args.flag("abs")});
}

}  // namespace

extern const MethodInfo saliency_method{.name = "saliency",
                                        .captum_class = "Saliency",
                                        .options = kSaliencyOptions,
                                        .make = &make_saliency};

}  // namespace gradlens::attr
