// IntegratedGradients (Captum defaults: 50 Gauss-Legendre steps, zero baselines, multiplied by
// inputs): the steps of the images go through the network in batches, step-major (row s * N + i),
// in groups of images whose steps fit a chunk of the memory budget (or internal_batch_size).
#pragma once

#include "gradlens/attr/approximation.h"
#include "gradlens/attr/attribution.h"
#include "gradlens/export.h"

namespace gradlens::attr {

// Outside the class: GCC rejects a nested struct's default member initializers in a default
// argument.
struct GRADLENS_API IntegratedGradientsOptions {
  int n_steps = 50;
  Approximation method = Approximation::GaussLegendre;
  bool multiply_by_inputs = true;
  // Two more forward passes per image. Captum's default is False; ours is on for the library (the
  // tutorial asks for it) and the CLI asks with --delta.
  bool return_convergence_delta = true;
};

class GRADLENS_API IntegratedGradients : public Attribution {
 public:
  using Options = IntegratedGradientsOptions;
  explicit IntegratedGradients(ForwardFn forward, Options options = {})
      : Attribution(std::move(forward)), options_(options) {}

  std::string_view name() const override { return "integrated_gradients"; }
  /// delta[i] = sum(attributions[i]) - (f_t(x_i) - f_t(baseline_i)).
  Attributions attribute(const Tensor& inputs,
                         const Targets& targets,
                         const Tensor& baselines = {}) override;
  bool has_convergence_delta() const override { return options_.return_convergence_delta; }
  Options& options() { return options_; }

 private:
  // The steps of images that need no further grouping, `rows` a gradient call, `concurrency`
  // chunks of steps at a time (each on its own CPU thread; the sum over chunks stays in order).
  Attributions attribute_steps(const Tensor& inputs,
                               std::span<const std::int64_t> t,
                               const Tensor& base,
                               const Quadrature& q,
                               std::int64_t rows,
                               int concurrency);
  Options options_;
};

/// sum(attributions[i]) - (f_t(x_i) - f_t(b_i)) for each row: the completeness gap.
GRADLENS_API Tensor convergence_delta(const ForwardFn& forward,
                                      const Tensor& attributions,
                                      const Tensor& inputs,
                                      const Tensor& baselines,
                                      std::span<const std::int64_t> targets);

}  // namespace gradlens::attr
