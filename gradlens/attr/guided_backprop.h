// GuidedBackprop: the plain gradient of f_t, except that every relu on the tape passes back
// relu(grad_out * (x > 0)): only positive gradient, only where the relu was open. Rules attach to
// tape ops, so a relu used twice or called as a function gets the rule too (Captum hooks only
// nn.ReLU modules).
#pragma once

#include "gradlens/attr/attribution.h"
#include "gradlens/autograd/hooks.h"
#include "gradlens/export.h"

namespace gradlens::attr {

class GRADLENS_API GuidedBackprop : public Attribution {
 public:
  explicit GuidedBackprop(ForwardFn forward) : Attribution(std::move(forward)) {}

  std::string_view name() const override { return "guided_backprop"; }
  /// The modified gradient, shaped like the inputs; baselines are ignored.
  Attributions attribute(const Tensor& inputs,
                         const Targets& targets,
                         const Tensor& baselines = {}) override;
};

/// d sum_i f(x_i)[t_i] / dx with `rule` replacing the backward of every relu node, in chunks of
/// `planner`'s size (GuidedBackprop, Deconvolution).
GRADLENS_API Tensor relu_rule_gradients(const ForwardFn& forward,
                                        BatchPlanner& planner,
                                        const Tensor& inputs,
                                        std::span<const std::int64_t> targets,
                                        std::string_view method,
                                        BackwardRule rule);

}  // namespace gradlens::attr
