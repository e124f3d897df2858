// Attribution: the common base of every method. A model is any callable from a batch [N, ...] to
// logits [N, C]; a method turns "attribute these N inputs for these targets" into as few batched
// forward/backward passes as it can, chunked only to respect a memory budget (attr/batching.h).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "gradlens/attr/batching.h"
#include "gradlens/autograd/tensor.h"

namespace gradlens::attr {

using ForwardFn = std::function<Tensor(const Tensor&)>;

struct Attributions {
  Tensor values;  // shaped like the inputs (layer methods: like the layer)
  Tensor delta;   // convergence delta per row, [N] (or [N * K] for DeepLiftShap), where defined
};

class Attribution {
 public:
  explicit Attribution(ForwardFn forward) : forward_(std::move(forward)) {}
  virtual ~Attribution() = default;

  /// Captum's snake_case name ("integrated_gradients").
  virtual std::string_view name() const = 0;
  /// inputs [N, ...]; targets: one class per row (or one for all rows). baselines: shaped like the
  /// inputs, or [1, ...] broadcast to every row, or (DeepLiftShap, GradientShap) a distribution
  /// [K, ...]; undefined means zeros. Methods without baselines ignore them.
  virtual Attributions attribute(const Tensor& inputs,
                                 std::span<const std::int64_t> targets,
                                 const Tensor& baselines = {}) = 0;
  /// Whether attribute() fills Attributions::delta.
  virtual bool has_convergence_delta() const { return false; }

  const ForwardFn& forward_fn() const { return forward_; }
  /// Memory budget and row limit for the batched gradient calls.
  BatchPlanner& batching() { return planner_; }

 protected:
  ForwardFn forward_;
  BatchPlanner planner_;
};

/// targets expanded to one per row: a single target repeats; otherwise the count must be `rows`.
std::vector<std::int64_t> expand_targets(std::span<const std::int64_t> targets, std::int64_t rows);

/// Baselines as a tensor shaped like `inputs`: zeros when undefined, [1, ...] repeated per row.
Tensor expand_baselines(const Tensor& baselines, const Tensor& inputs, std::string_view method);

}  // namespace gradlens::attr
