// Saliency: attr = |grad| (abs) or grad, grad = d f_t(x) / dx.
#include "attr/saliency.h"

#include <vector>

#include "attr/gradient.h"
#include "autograd/error.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace gradlens::attr {

Tensor chunked_gradients(const ForwardFn& forward,
                         BatchPlanner& planner,
                         const Tensor& inputs,
                         std::span<const std::int64_t> targets) {
  NoGradGuard no_grad;  // only compute_gradients records a tape
  const std::int64_t n = inputs.size(0);
  const auto t = expand_targets(targets, n);
  const Shape row_shape(inputs.shape().begin() + 1, inputs.shape().end());
  const std::int64_t rows = planner.chunk_rows(forward, row_shape, inputs.device());
  if (rows >= n) return compute_gradients(forward, inputs, t);
  std::vector<Tensor> parts;
  for_each_chunk(n, rows, [&](std::int64_t begin, std::int64_t end) {
    parts.push_back(compute_gradients(forward,
                                      slice(inputs, begin, end),
                                      std::span(t).subspan(static_cast<std::size_t>(begin),
                                                           static_cast<std::size_t>(end - begin))));
  });
  return cat(parts);
}

Attributions Saliency::attribute(const Tensor& inputs,
                                 std::span<const std::int64_t> targets,
                                 const Tensor& /*baselines*/) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) > 0,
                 "[saliency] inputs must be a non-empty batch");
  NoGradGuard no_grad;
  const Tensor grads = chunked_gradients(forward_, planner_, inputs, targets);
  Attributions out;
  out.values = options_.abs ? abs(grads) : grads;
  return out;
}

}  // namespace gradlens::attr
