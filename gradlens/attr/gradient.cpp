#include "gradlens/attr/gradient.h"

#include <vector>

#include "gradlens/autograd/engine.h"
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"

namespace gradlens::attr {

namespace {

Tensor checked_logits(const ForwardFn& forward, const Tensor& x) {
  Tensor out = forward(x);
  GRADLENS_CHECK(out.defined() && out.dim() == 2 && out.size(0) == x.size(0),
                 "[attribute] the model must map [N, ...] to logits [N, C]; got ",
                 out.defined() ? shape_str(out.shape()) : std::string("nothing"),
                 " for input ",
                 shape_str(x.shape()));
  return out;
}

}  // namespace

Tensor compute_gradients(const ForwardFn& forward,
                         const Tensor& inputs,
                         std::span<const std::int64_t> targets) {
  EnableGradGuard grad_on;  // NoiseTunnel and callers may sit in a no-grad region
  const auto t = expand_targets(targets, inputs.size(0));
  Tensor x = inputs.detach();
  x.set_requires_grad(true);
  const Tensor selected = pick(checked_logits(forward, x), t);
  return grad({sum(selected)}, {x})[0];
}

Tensor target_outputs(const ForwardFn& forward,
                      const Tensor& inputs,
                      std::span<const std::int64_t> targets) {
  NoGradGuard no_grad;
  return pick(checked_logits(forward, inputs), expand_targets(targets, inputs.size(0)));
}

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

Tensor row_sums(const Tensor& x) {
  NoGradGuard no_grad;
  const Tensor rows = reshape(x, {x.size(0), -1});
  // A [1, D] ones "weight" turns the per-row sum into one linear kernel on any device.
  return reshape(linear(rows, Tensor::full({1, rows.size(1)}, 1.f, x.device())), {x.size(0)});
}

}  // namespace gradlens::attr
