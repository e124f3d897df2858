// IG_i = (x_i - b_i) * sum_s w_s * grad f_t(b_i + alpha_s * (x_i - b_i)).
#include "attr/integrated_gradients.h"

#include <algorithm>

#include "attr/gradient.h"
#include "autograd/error.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace gradlens::attr {

Tensor convergence_delta(const ForwardFn& forward,
                         const Tensor& attributions,
                         const Tensor& inputs,
                         const Tensor& baselines,
                         std::span<const std::int64_t> targets) {
  NoGradGuard no_grad;
  const Tensor gap =
      sub(target_outputs(forward, inputs, targets), target_outputs(forward, baselines, targets));
  return sub(row_sums(attributions), gap);
}

Attributions IntegratedGradients::attribute(const Tensor& inputs,
                                            std::span<const std::int64_t> targets,
                                            const Tensor& baselines) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) > 0,
                 "[integrated_gradients] inputs must be a non-empty batch");
  NoGradGuard no_grad;  // only compute_gradients records a tape
  const std::int64_t n = inputs.size(0);
  const auto t = expand_targets(targets, n);
  const Tensor base = expand_baselines(baselines, inputs, name());
  const Tensor diff = sub(inputs, base);
  const Quadrature q = quadrature(options_.method, options_.n_steps);

  Shape row_shape(inputs.shape().begin() + 1, inputs.shape().end());
  const std::int64_t rows = planner_.chunk_rows(forward_, row_shape, inputs.device());
  const std::int64_t steps_per_chunk = std::max<std::int64_t>(1, rows / n);

  std::vector<std::int64_t> chunk_targets;
  Tensor total;
  for_each_chunk(options_.n_steps, steps_per_chunk, [&](std::int64_t s0, std::int64_t s1) {
    std::vector<Tensor> scaled;
    chunk_targets.clear();
    for (std::int64_t s = s0; s < s1; ++s) {
      // float32 alpha, as Captum's python float multiplies a float32 tensor
      scaled.push_back(
          add(base, mul_scalar(diff, static_cast<float>(q.alphas[static_cast<std::size_t>(s)]))));
      chunk_targets.insert(chunk_targets.end(), t.begin(), t.end());
    }
    const Tensor grads = compute_gradients(forward_, cat(scaled), chunk_targets);
    for (std::int64_t s = s0; s < s1; ++s) {
      const Tensor g = mul_scalar(slice(grads, (s - s0) * n, (s - s0 + 1) * n),
                                  static_cast<float>(q.weights[static_cast<std::size_t>(s)]));
      total = total.defined() ? add(total, g) : g;
    }
  });
  Attributions out;
  out.values = options_.multiply_by_inputs ? mul(total, diff) : total;
  out.delta = convergence_delta(forward_, out.values, inputs, base, t);
  return out;
}

}  // namespace gradlens::attr
