// IG_i = (x_i - b_i) * sum_s w_s * grad f_t(b_i + alpha_s * (x_i - b_i)).
#include "gradlens/attr/integrated_gradients.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "gradlens/attr/gradient.h"
#include "gradlens/attr/registry.h"
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"

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
                                            const Targets& targets,
                                            const Tensor& baselines) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) > 0,
                 "[integrated_gradients] inputs must be a non-empty batch");
  NoGradGuard no_grad;  // only compute_gradients records a tape
  const std::int64_t n = inputs.size(0);
  const auto t = expand_targets(targets, n);
  const Tensor base = expand_baselines(baselines, inputs, name());
  const Quadrature q = quadrature(options_.method, options_.n_steps);  // once, for every group

  Shape row_shape(inputs.shape().begin() + 1, inputs.shape().end());
  const std::int64_t rows = planner_.chunk_rows(forward_, row_shape, inputs.device());
  // Groups of images whose every step fits one chunk, where a chunk holds all the steps of one
  // image: the weighted sum over steps then runs once per group on cache-sized data, instead of
  // once per step over every image (NoiseTunnel's 100 samples at one step a chunk spent a tenth
  // of its time there). Otherwise one image's steps over several chunks. Either way the budget
  // bounds the work whatever the number of images, and an image's result does not depend on n.
  const std::int64_t group = std::max<std::int64_t>(1, rows / options_.n_steps);
  if (n > group) {
    return attribute_in_groups(
        n,
        group,
        [&](std::int64_t b, std::int64_t e) {
          return attribute_steps(
              slice(inputs, b, e),
              std::span(t).subspan(static_cast<std::size_t>(b), static_cast<std::size_t>(e - b)),
              slice(base, b, e),
              q,
              rows,
              /*concurrency=*/1);  // the groups are what runs concurrently
        },
        planner_.concurrency(inputs.device()));
  }
  // One group: its chunks of steps are what may run at once (one image's 50 steps in ResNet8's
  // 8-row chunks left a core spinning in every op split over 8 rows).
  return attribute_steps(inputs, t, base, q, rows, planner_.concurrency(inputs.device()));
}

Attributions IntegratedGradients::attribute_steps(const Tensor& inputs,
                                                  std::span<const std::int64_t> t,
                                                  const Tensor& base,
                                                  const Quadrature& q,
                                                  std::int64_t rows,
                                                  int concurrency) {
  NoGradGuard no_grad;  // again: a concurrent group runs on a thread of its own
  const std::int64_t n = inputs.size(0);
  const Tensor diff = sub(inputs, base);
  const std::int64_t steps_per_chunk = std::max<std::int64_t>(1, rows / n);

  // One broadcast op builds a chunk's scaled inputs [steps, n, ...] and one weighs and sums its
  // gradients, whatever the step count: no launch per step on a GPU.
  Shape batch_shape = inputs.shape();  // [1, n, ...]
  batch_shape.insert(batch_shape.begin(), 1);
  const Tensor diff_batch = reshape(diff, batch_shape), base_batch = reshape(base, batch_shape);
  const auto column = [&](const std::vector<double>& values, std::int64_t s0, std::int64_t s1) {
    // float32, as Captum's python floats multiply float32 tensors
    std::vector<float> v(values.begin() + s0, values.begin() + s1);
    Shape column_shape(inputs.dim() + 1, 1);  // [steps, 1, ..., 1]
    column_shape[0] = s1 - s0;
    return Tensor::from_vector(v, column_shape, inputs.device());
  };
  // The weighted sum over the steps [s0, s1) of one chunk.
  const auto chunk_sum = [&](std::int64_t s0, std::int64_t s1) {
    NoGradGuard chunk_no_grad;  // per thread
    Shape rows_shape = inputs.shape();
    rows_shape[0] = (s1 - s0) * n;
    const Tensor scaled =
        reshape(add(base_batch, mul(column(q.alphas, s0, s1), diff_batch)), rows_shape);
    std::vector<std::int64_t> chunk_targets;
    for (std::int64_t s = s0; s < s1; ++s)
      chunk_targets.insert(chunk_targets.end(), t.begin(), t.end());
    Shape grads_shape = batch_shape;
    grads_shape[0] = s1 - s0;
    const Tensor grads = reshape(compute_gradients(forward_, scaled, chunk_targets), grads_shape);
    return sum_dim(mul(grads, column(q.weights, s0, s1)), 0);
  };
  const std::int64_t chunks = (options_.n_steps + steps_per_chunk - 1) / steps_per_chunk;
  std::vector<Tensor> sums(static_cast<std::size_t>(chunks));
  const auto run_chunk = [&](std::int64_t i) {
    sums[static_cast<std::size_t>(i)] = chunk_sum(
        i * steps_per_chunk, std::min<std::int64_t>(options_.n_steps, (i + 1) * steps_per_chunk));
  };
  run_concurrently(chunks, concurrency, run_chunk);
  // Summed in chunk order whatever ran them: the same result at any concurrency.
  Tensor total = sums[0];
  for (std::size_t i = 1; i < sums.size(); ++i) total = add(total, sums[i]);
  Attributions out;
  out.values = options_.multiply_by_inputs ? mul(total, diff) : total;
  if (options_.return_convergence_delta)
    out.delta = convergence_delta(forward_, out.values, inputs, base, t);
  return out;
}

}  // namespace gradlens::attr

// Its entry in the method registry (registry.h).
namespace gradlens::attr {
namespace {

constexpr OptionSpec kIntegratedGradientsOptions[] = {
    {.name = "n_steps",
     .type = OptionType::Int,
     .default_value = "50",
     .min = 1,
     .max = 100000,
     .help = "steps of the path integral"},
    {.name = "method",
     .type = OptionType::Text,
     .default_value = "gausslegendre",
     .choices = "gausslegendre,riemann_left,riemann_right,riemann_middle,riemann_trapezoid",
     .help = "how the integral is approximated"},
    {.name = "multiply_by_inputs",
     .type = OptionType::Bool,
     .default_value = "true",
     .help = "(inputs - baselines) * the integral, or the integral alone"},
    kDeltaOption};

std::unique_ptr<Attribution> make_integrated_gradients(nn::Module& model, const MethodArgs& args) {
  const Approximation method = parse_approximation(args.text("method"));
  if (method != Approximation::GaussLegendre && args.integer("n_steps") < 2)
    throw OptionError(
        "n_steps",
        "[attribute] integrated_gradients option n_steps must be >= 2 for " + args.text("method"));
  return std::make_unique<IntegratedGradients>(
      model,
      IntegratedGradientsOptions{.n_steps = static_cast<int>(args.integer("n_steps")),
                                 .method = method,
                                 .multiply_by_inputs = args.flag("multiply_by_inputs"),
                                 .return_convergence_delta = args.flag("delta")});
}

}  // namespace

extern const MethodInfo integrated_gradients_method{.name = "integrated_gradients",
                                                    .captum_class = "IntegratedGradients",
                                                    .baselines = Baselines::PerInput,
                                                    .has_delta = true,
                                                    .options = kIntegratedGradientsOptions,
                                                    .make = &make_integrated_gradients};

}  // namespace gradlens::attr
