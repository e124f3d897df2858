// GuidedBackprop: at each relu, grad_in = relu(grad_out * (x > 0)), i.e. relu of the relu node's
// own backward; conv, linear, max-pool and the rest keep their plain gradients.
#include "gradlens/attr/guided_backprop.h"

#include <memory>

#include "gradlens/attr/gradient.h"
#include "gradlens/attr/registry.h"
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"

namespace gradlens::attr {

Tensor relu_rule_gradients(const ForwardFn& forward,
                           BatchPlanner& planner,
                           const Tensor& inputs,
                           std::span<const std::int64_t> targets,
                           std::string_view method,
                           BackwardRule rule) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) > 0,
                 "[",
                 method,
                 "] inputs must be a non-empty batch");
  NoGradGuard no_grad;
  const std::int64_t n = inputs.size(0);
  const auto t = expand_targets(targets, n);
  const Shape row_shape(inputs.shape().begin() + 1, inputs.shape().end());
  const std::int64_t rows = planner.chunk_rows(forward, row_shape, inputs.device());
  BackwardOverrideGuard relu_rule(Ops::relu, std::move(rule));
  std::vector<Tensor> parts;
  for_each_chunk(n, rows, [&](std::int64_t b, std::int64_t e) {
    parts.push_back(compute_gradients(
        forward,
        slice(inputs, b, e),
        std::span(t).subspan(static_cast<std::size_t>(b), static_cast<std::size_t>(e - b))));
  });
  return parts.size() == 1 ? parts[0] : cat(parts);
}

Attributions GuidedBackprop::attribute(const Tensor& inputs,
                                       const Targets& targets,
                                       const Tensor&) {
  Attributions out;
  out.values = relu_rule_gradients(
      forward_,
      planner_,
      inputs,
      targets,
      name(),
      [](Node& node, const Tensor& grad_out, const std::vector<bool>& needs) {
        std::vector<Tensor> g = node.backward(grad_out, needs);  // grad_out * (x > 0)
        g[0] = relu(g[0]);
        return g;
      });
  return out;
}

}  // namespace gradlens::attr

// Its entry in the method registry (registry.h).
namespace gradlens::attr {
namespace {

std::unique_ptr<Attribution> make_guided_backprop(nn::Module& model, const MethodArgs&) {
  return std::make_unique<GuidedBackprop>(model);
}

}  // namespace

extern const MethodInfo guided_backprop_method{
    .name = "guided_backprop", .captum_class = "GuidedBackprop", .make = &make_guided_backprop};

}  // namespace gradlens::attr
