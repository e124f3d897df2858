// Saliency (Simonyan et al. 2014): the gradient of the target logit with respect to the input,
// |d f_t / dx| by default (Captum's abs=True) or signed. One batched gradient call per planner
// chunk of rows, never one image at a time.
#pragma once

#include <cstdint>
#include <span>

#include "gradlens/attr/attribution.h"
#include "gradlens/export.h"

namespace gradlens::attr {

struct GRADLENS_API SaliencyOptions {
  bool abs = true;  // Captum's default: the gradient's magnitude
};

class GRADLENS_API Saliency : public Attribution {
 public:
  using Options = SaliencyOptions;
  explicit Saliency(ForwardFn forward, Options options = {})
      : Attribution(std::move(forward)), options_(options) {}

  std::string_view name() const override { return "saliency"; }
  /// Baselines are ignored; no convergence delta.
  Attributions attribute(const Tensor& inputs,
                         const Targets& targets,
                         const Tensor& baselines = {}) override;
  Options& options() { return options_; }

 private:
  Options options_;
};

}  // namespace gradlens::attr
