// Attribution: the common base of every method. A model is any callable from a batch [N, ...] to
// logits [N, C]; a method turns "attribute these N inputs for these targets" into as few batched
// forward/backward passes as it can, chunked only to respect a memory budget (attr/batching.h).
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "gradlens/attr/batching.h"
#include "gradlens/autograd/tensor.h"
#include "gradlens/export.h"
#include "gradlens/nn/module.h"

namespace gradlens::attr {

/// The model: a callable from a batch [N, ...] to logits [N, C]. A Module is held by reference,
/// never copied (it must outlive the method), and called through operator(), so its hooks run;
/// any other callable is held by value.
class GRADLENS_API ForwardFn : public std::function<Tensor(const Tensor&)> {
  using Base = std::function<Tensor(const Tensor&)>;

 public:
  ForwardFn() = default;
  ForwardFn(nn::Module& model) : Base([&model](const Tensor& x) { return model(x); }) {}
  ForwardFn(nn::Module&&) = delete;  // a temporary model would be gone before the first call
  template <class F>
  requires(!std::derived_from<std::remove_cvref_t<F>, nn::Module> &&
           !std::same_as<std::remove_cvref_t<F>, ForwardFn> && std::is_constructible_v<Base, F>)
      ForwardFn(F&& fn)
      : Base(std::forward<F>(fn)) {}
};

/// Targets: one class per input row, or one for every row, from an integer, a list or vector of
/// integers, a span, or a tensor of class indices (floats holding integers, as argmax gives).
class GRADLENS_API Targets {
 public:
  Targets(std::int64_t target) : values_{target} {}
  Targets(std::span<const std::int64_t> targets) : values_(targets.begin(), targets.end()) {}
  Targets(std::span<std::int64_t> targets) : values_(targets.begin(), targets.end()) {}
  Targets(const std::vector<std::int64_t>& targets) : values_(targets) {}
  template <std::integral I>
  Targets(const std::vector<I>& targets) : values_(targets.begin(), targets.end()) {}
  Targets(std::initializer_list<std::int64_t> targets) : values_(targets) {}
  /// Throws std::invalid_argument naming the value when an element is not a whole number.
  Targets(const Tensor& targets);

  operator std::span<const std::int64_t>() const { return values_; }
  std::size_t size() const { return values_.size(); }
  bool empty() const { return values_.empty(); }
  const std::int64_t* data() const { return values_.data(); }
  std::int64_t operator[](std::size_t i) const { return values_[i]; }
  auto begin() const { return values_.begin(); }
  auto end() const { return values_.end(); }

 private:
  std::vector<std::int64_t> values_;
};

struct GRADLENS_API Attributions {
  Tensor values;  // shaped like the inputs (layer methods: like the layer)
  Tensor delta;   // convergence delta per row, [N] (or [N * K] for DeepLiftShap), where defined
};

class GRADLENS_API Attribution {
 public:
  explicit Attribution(ForwardFn forward) : forward_(std::move(forward)) {}
  virtual ~Attribution() = default;

  /// Captum's snake_case name ("integrated_gradients").
  virtual std::string_view name() const = 0;
  /// inputs [N, ...]; targets: one class per row (or one for all rows). baselines: shaped like the
  /// inputs, or [1, ...] broadcast to every row, or (DeepLiftShap, GradientShap) a distribution
  /// [K, ...]; undefined means zeros. Methods without baselines ignore them.
  virtual Attributions attribute(const Tensor& inputs,
                                 const Targets& targets,
                                 const Tensor& baselines = {}) = 0;
  /// Whether attribute() fills Attributions::delta.
  virtual bool has_convergence_delta() const { return false; }
  /// The data-set index of each input row of the next attribute() calls, for the methods that draw
  /// random numbers (NoiseTunnel, GradientShap): an image's draws then do not depend on its batch.
  virtual void set_image_ids(std::vector<std::int64_t> ids) { (void)ids; }

  const ForwardFn& forward_fn() const { return forward_; }
  /// Memory budget and row limit for the batched gradient calls.
  BatchPlanner& batching() { return planner_; }

 protected:
  ForwardFn forward_;
  BatchPlanner planner_;
};

/// targets expanded to one per row: a single target repeats; otherwise the count must be `rows`.
GRADLENS_API std::vector<std::int64_t> expand_targets(std::span<const std::int64_t> targets,
                                                      std::int64_t rows);

/// Baselines as a tensor shaped like `inputs`: zeros when undefined, [1, ...] repeated per row.
GRADLENS_API Tensor expand_baselines(const Tensor& baselines,
                                     const Tensor& inputs,
                                     std::string_view method);

}  // namespace gradlens::attr
