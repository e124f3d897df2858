// InputXGradient (Shrikumar et al. 2016): attr = x * d f_t(x) / dx, the gradient times the input,
// batched like Saliency (one gradient call per planner chunk).
#pragma once

#include <cstdint>
#include <span>

#include "gradlens/attr/attribution.h"
#include "gradlens/export.h"

namespace gradlens::attr {

class GRADLENS_API InputXGradient : public Attribution {
 public:
  explicit InputXGradient(ForwardFn forward) : Attribution(std::move(forward)) {}

  std::string_view name() const override { return "input_x_gradient"; }
  /// Baselines are ignored; no convergence delta.
  Attributions attribute(const Tensor& inputs,
                         const Targets& targets,
                         const Tensor& baselines = {}) override;
};

}  // namespace gradlens::attr
