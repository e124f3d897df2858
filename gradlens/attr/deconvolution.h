// Deconvolution (Zeiler & Fergus): the plain gradient of f_t, except that every relu on the tape
// passes back relu(grad_out), ignoring its forward mask. Conv, linear and max-pool keep their plain
// gradients (max-pool routes to its first maximum).
#pragma once

#include "gradlens/attr/attribution.h"
#include "gradlens/export.h"

namespace gradlens::attr {

class GRADLENS_API Deconvolution : public Attribution {
 public:
  explicit Deconvolution(ForwardFn forward) : Attribution(std::move(forward)) {}

  std::string_view name() const override { return "deconvolution"; }
  /// The modified gradient, shaped like the inputs; baselines are ignored.
  Attributions attribute(const Tensor& inputs,
                         const Targets& targets,
                         const Tensor& baselines = {}) override;
};

}  // namespace gradlens::attr
