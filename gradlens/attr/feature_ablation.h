// FeatureAblation (Captum defaults): every element of feature k gets f_t(x) - f_t(x with feature k
// set to the baseline). Features are the ids of a mask shared by every row (each scalar its own
// feature when no mask is given); perturbations_per_eval perturbed copies of the whole batch go
// through one forward pass. Occlusion (attr/occlusion.h) is built on the same perturbation loop.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "gradlens/attr/attribution.h"
#include "gradlens/export.h"

namespace gradlens::attr {

struct GRADLENS_API FeatureAblationOptions {
  /// Feature id of each element of a mask of shape `mask_shape` (row-major); empty: every scalar
  /// of a row is its own feature.
  std::vector<std::int64_t> feature_mask{};
  /// Broadcast against one input row, trailing dims aligned ([1, 32, 32] or [3, 32, 32] for rows
  /// [3, 32, 32]; leading 1s are allowed, as Captum's [1, 1, 32, 32]). Empty: the row's shape.
  Shape mask_shape{};
  /// Perturbed copies of the batch per forward pass (Captum's default 1); any value gives the same
  /// result.
  std::int64_t perturbations_per_eval = 1;
};

class GRADLENS_API FeatureAblation : public Attribution {
 public:
  using Options = FeatureAblationOptions;
  explicit FeatureAblation(ForwardFn forward, Options options = {})
      : Attribution(std::move(forward)), options_(std::move(options)) {}

  std::string_view name() const override { return "feature_ablation"; }
  /// baselines: undefined (zeros), a scalar [], [1, ...] or the inputs' shape.
  Attributions attribute(const Tensor& inputs,
                         const Targets& targets,
                         const Tensor& baselines = {}) override;
  Options& options() { return options_; }

 private:
  Options options_;
};

/// Masks of perturbations [begin, end): a 0/1 tensor [end - begin, 1, row...] on the inputs'
/// device, where a row dim may be 1 to broadcast.
using PerturbationMasks = std::function<Tensor(std::int64_t begin, std::int64_t end)>;

/// The loop FeatureAblation and Occlusion share: sum over perturbations j of
/// (f_t(x) - f_t(x * (1 - M_j) + baseline * M_j)) * M_j -> the inputs' shape, accumulated in the
/// order of j whatever per_eval is. `count` perturbations, `per_eval` of them per forward pass.
GRADLENS_API Tensor perturbation_sum(const ForwardFn& forward,
                                     const Tensor& inputs,
                                     std::span<const std::int64_t> targets,
                                     const Tensor& baselines,
                                     std::int64_t count,
                                     std::int64_t per_eval,
                                     const PerturbationMasks& masks,
                                     std::string_view method);

}  // namespace gradlens::attr
