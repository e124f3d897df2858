// DeepLiftShap: DeepLift against every baseline of a distribution [K, ...] (K > 1), averaged. One
// DeepLift call on N * K pairs, image-major: row i * K + j = image i against baseline j (Captum's
// repeat_interleave of the inputs and repeat of the baselines).
#pragma once

#include "gradlens/attr/deep_lift.h"
#include "gradlens/export.h"

namespace gradlens::attr {

class GRADLENS_API DeepLiftShap : public DeepLift {
 public:
  explicit DeepLiftShap(ForwardFn forward, Options options = {})
      : DeepLift(std::move(forward), options) {}

  std::string_view name() const override { return "deeplift_shap"; }
  /// baselines [K, ...] with K > 1 (required). values: the mean over j of DeepLift(x_i vs b_j);
  /// delta [N * K]: row i * K + j = sum(attribution of x_i vs b_j) - (f_t(x_i) - f_t(b_j)).
  Attributions attribute(const Tensor& inputs,
                         const Targets& targets,
                         const Tensor& baselines = {}) override;
};

}  // namespace gradlens::attr
