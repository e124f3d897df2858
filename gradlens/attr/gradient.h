// The one gradient call every gradient method is built on: d sum_i f(x)[i, t_i] / dx. Rows are
// independent (the Net has no cross-row op such as batch norm), so the sum gives each row its own
// gradient, exactly as Captum's compute_gradients does with torch.autograd.grad.
#pragma once

#include <cstdint>
#include <span>

#include "gradlens/attr/attribution.h"
#include "gradlens/export.h"

namespace gradlens::attr {

/// inputs [N, ...] -> gradients [N, ...]; grad mode is switched on for the call.
GRADLENS_API Tensor compute_gradients(const ForwardFn& forward,
                                      const Tensor& inputs,
                                      std::span<const std::int64_t> targets);

/// f(x)[i, t_i] without a tape -> [N].
GRADLENS_API Tensor target_outputs(const ForwardFn& forward,
                                   const Tensor& inputs,
                                   std::span<const std::int64_t> targets);

/// d sum_i f(x)[i, t_i] / dx for every row of inputs [N, ...] -> [N, ...], in as few gradient calls
/// as the planner's chunk size allows (one when everything fits). Shared by the plain-gradient
/// methods (Saliency, InputXGradient, GradientShap).
GRADLENS_API Tensor chunked_gradients(const ForwardFn& forward,
                                      BatchPlanner& planner,
                                      const Tensor& inputs,
                                      std::span<const std::int64_t> targets);

/// Per-row sum of x [N, ...] -> [N] (convergence deltas).
GRADLENS_API Tensor row_sums(const Tensor& x);

}  // namespace gradlens::attr
