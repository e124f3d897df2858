// DeepLift (Rescale rule) as Captum computes it: inputs and baselines run as ONE batch
// cat([x; r]) (rows [0, N) and [N, 2N) of every tape node), the target logit of all 2N rows is
// back-propagated, and the relu / max_pool2d nodes replace their backward by the rescale rule
// (multiplier = grad_out * delta_out / delta_in, the plain gradient where |delta_in| < eps).
#pragma once

#include "gradlens/attr/attribution.h"
#include "gradlens/export.h"

namespace gradlens::attr {

// Outside the class: GCC rejects a nested struct's default member initializers in a default
// argument.
struct GRADLENS_API DeepLiftOptions {
  bool multiply_by_inputs = true;  // attributions = (x - r) * multipliers, else the multipliers
  float eps = 1e-10f;              // |delta_in| below this falls back to the plain gradient
  // An op with no DeepLift rule (softmax, ...) is an error naming it; true takes its plain
  // gradient with a warning, as Captum does silently.
  bool allow_plain_gradient = false;
};

class GRADLENS_API DeepLift : public Attribution {
 public:
  using Options = DeepLiftOptions;
  explicit DeepLift(ForwardFn forward, Options options = {})
      : Attribution(std::move(forward)), options_(options) {}

  std::string_view name() const override { return "deeplift"; }
  /// baselines: like the inputs, [1, ...] or undefined (zeros). delta[i] = sum(attributions[i]) -
  /// (f_t(x_i) - f_t(r_i)), with f_t taken from the same doubled forward pass.
  Attributions attribute(const Tensor& inputs,
                         const Targets& targets,
                         const Tensor& baselines = {}) override;
  bool has_convergence_delta() const override { return true; }
  Options& options() { return options_; }

 protected:
  Options options_;
};

}  // namespace gradlens::attr
