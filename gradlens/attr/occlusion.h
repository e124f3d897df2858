// Occlusion (Captum defaults): a window slides over each input row with the given strides; every
// element gets the mean, over the windows that cover it, of f_t(x) - f_t(x with the window set to
// the baseline). Windows are numbered with the first row dim fastest; a window that runs past the
// end of a dim is clipped there (Captum's ceil((size - window) / stride) + 1 positions per dim).
#pragma once

#include <cstdint>

#include "gradlens/attr/attribution.h"
#include "gradlens/export.h"

namespace gradlens::attr {

struct GRADLENS_API OcclusionOptions {
  /// One size per row dim ([3, 8, 8] for rows [3, 32, 32]); required.
  Shape sliding_window_shapes{};
  /// One step per row dim, or a single step for all; empty: 1 everywhere.
  Shape strides{};
  /// Occluded copies of the batch per forward pass (Captum's default 1); any value gives the same
  /// result.
  std::int64_t perturbations_per_eval = 1;
};

class GRADLENS_API Occlusion : public Attribution {
 public:
  using Options = OcclusionOptions;
  explicit Occlusion(ForwardFn forward, Options options = {})
      : Attribution(std::move(forward)), options_(std::move(options)) {}

  std::string_view name() const override { return "occlusion"; }
  /// baselines: undefined (zeros), a scalar [], [1, ...] or the inputs' shape.
  Attributions attribute(const Tensor& inputs,
                         const Targets& targets,
                         const Tensor& baselines = {}) override;
  Options& options() { return options_; }

 private:
  Options options_;
};

}  // namespace gradlens::attr
