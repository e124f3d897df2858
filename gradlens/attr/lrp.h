// LRP with Captum's default rules on the tutorial Net: the epsilon rule on every conv2d, linear and
// max_pool2d node, relevance passed unchanged through relus. Computed as one modified gradient pass
// (Captum's formulation): each rule node divides its output gradient by stabilize(z, eps) and
// multiplies its input gradient by its input a; from one-hot(t) at the logits, the relevance of x
// is (that gradient) * f_t(x).
#pragma once

#include "gradlens/attr/attribution.h"
#include "gradlens/export.h"

namespace gradlens::attr {

// Outside the class: GCC rejects a nested struct's default member initializers in a default
// argument.
struct GRADLENS_API LRPOptions {
  float epsilon = 1e-9f;  // EpsilonRule's stabiliser: z + eps * (z >= 0 ? 1 : -1)
  // An op with no LRP rule (softmax, a residual add, ...) is an error naming it; true takes its
  // plain gradient with a warning.
  bool allow_plain_gradient = false;
};

class GRADLENS_API LRP : public Attribution {
 public:
  using Options = LRPOptions;
  explicit LRP(ForwardFn forward, Options options = {})
      : Attribution(std::move(forward)), options_(options) {}

  std::string_view name() const override { return "lrp"; }
  /// Relevance shaped like the inputs (baselines are ignored). delta[i] = f_t(x_i) -
  /// sum(relevance[i]): not ~0, since the biases absorb relevance.
  Attributions attribute(const Tensor& inputs,
                         const Targets& targets,
                         const Tensor& baselines = {}) override;
  bool has_convergence_delta() const override { return true; }
  Options& options() { return options_; }

 private:
  Options options_;
};

}  // namespace gradlens::attr
