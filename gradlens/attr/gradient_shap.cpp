// GradientShap: all N * n_samples sample rows go through one batched gradient call (chunked only by
// the planner); the mean over samples is Captum's smoothgrad (sum * 1 / n).
#include "gradlens/attr/gradient_shap.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "gradlens/attr/gradient.h"
#include "gradlens/attr/integrated_gradients.h"
#include "gradlens/attr/noise_tunnel.h"
#include "gradlens/attr/registry.h"
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/kernels/philox.h"

namespace gradlens::attr {

Attributions GradientShap::attribute(const Tensor& inputs,
                                     const Targets& targets,
                                     const Tensor& baselines) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) > 0,
                 "[gradient_shap] inputs must be a non-empty batch");
  GRADLENS_CHECK(options_.n_samples >= 1,
                 "[gradient_shap] n_samples must be at least 1, got ",
                 options_.n_samples);
  GRADLENS_CHECK(std::isfinite(options_.stdevs) && options_.stdevs >= 0.f,
                 "[gradient_shap] stdevs must be finite and >= 0, got ",
                 options_.stdevs);
  Shape row_shape(inputs.shape().begin() + 1, inputs.shape().end());
  Shape expected_baselines = row_shape;
  expected_baselines.insert(expected_baselines.begin(), -1);
  GRADLENS_CHECK(baselines.defined(),
                 "[gradient_shap] baselines are required: a distribution of reference inputs ",
                 shape_str(expected_baselines),
                 " (K rows) for inputs ",
                 shape_str(inputs.shape()));
  GRADLENS_CHECK(
      baselines.dim() == inputs.dim() && baselines.size(0) >= 1 &&
          std::equal(
              baselines.shape().begin() + 1, baselines.shape().end(), inputs.shape().begin() + 1),
      "[gradient_shap] baselines ",
      shape_str(baselines.shape()),
      " do not fit inputs ",
      shape_str(inputs.shape()),
      " (expected a distribution ",
      shape_str(expected_baselines),
      ")");
  GRADLENS_CHECK(baselines.device() == inputs.device(),
                 "[gradient_shap] baselines and inputs are on different devices");
  NoGradGuard no_grad;  // only compute_gradients records a tape
  const std::int64_t n = inputs.size(0);
  const std::int64_t ns = options_.n_samples;
  const std::int64_t rows = n * ns;
  const std::int64_t k = baselines.size(0);
  Shape expanded = row_shape;
  expanded.insert(expanded.begin(), rows);
  const RandomDraws* draws = options_.draws ? &*options_.draws : nullptr;
  const std::vector<std::int64_t> streams = image_streams(options_.image_ids, n, name());

  // (1) baseline rows; sample s of image i takes draw s of the image's streams (draws.h)
  const std::vector<std::int64_t> index =
      baseline_rows(draws, streams, ns, k, options_.seed, name());
  // (2) noise on the inputs, made on their device
  // NOTE: stdevs 0 (the default) draws nothing: Captum draws zeros, but our stream is not torch's.
  const Tensor repeated = repeat_interleave(inputs, ns);
  Tensor xn = repeated;
  if (const Tensor* given = given_noise(draws, expanded, name())) {
    xn = add(repeated, given->to(inputs.device()));
  } else if (options_.stdevs > 0.f) {
    std::vector<std::int64_t> samples(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r) samples[static_cast<std::size_t>(r)] = r % ns;
    xn = normal_noise(repeated,
                      repeat_interleave(streams, ns),
                      samples,
                      options_.stdevs,
                      options_.seed,
                      philox::kNoise);
  }
  // (3) interpolation points, drawn in double and used as float32 (Captum's numpy -> float32)
  std::vector<float> alphas;
  if (draws && !draws->alphas.empty()) {
    GRADLENS_CHECK(static_cast<std::int64_t>(draws->alphas.size()) == rows,
                   "[gradient_shap] draws.alphas has ",
                   draws->alphas.size(),
                   " entries, expected one per sample row: ",
                   rows);
    alphas = draws->alphas;
  } else {
    alphas = alpha_rows(streams, ns, options_.seed);
  }

  const auto t = repeat_interleave(expand_targets(targets, n), ns);
  const Tensor b = index_rows(baselines, index);
  Shape alpha_shape(expanded.size(), 1);
  alpha_shape[0] = rows;
  const Tensor alpha = Tensor::from_vector(alphas, alpha_shape, inputs.device());
  // alpha * xn + (1 - alpha) * b, every product in float32 as Captum computes it
  const Tensor scaled = add(mul(alpha, xn), mul(affine(alpha, -1.f, 1.f), b));
  const Tensor grads = chunked_gradients(forward_, planner_, scaled, t);
  const Tensor per_row = options_.multiply_by_inputs ? mul(sub(xn, b), grads) : grads;

  Attributions out;
  Shape by_sample = row_shape;
  by_sample.insert(by_sample.begin(), {n, ns});
  out.values = div(sum_dim(reshape(per_row, by_sample), 1),
                   Tensor::scalar(static_cast<float>(ns), inputs.device()));
  if (options_.return_convergence_delta) out.delta = convergence_delta(forward_, per_row, xn, b, t);
  return out;
}

}  // namespace gradlens::attr

// Its entry in the method registry (registry.h).
namespace gradlens::attr {
namespace {

constexpr OptionSpec kGradientShapOptions[] = {
    {.name = "n_samples",
     .type = OptionType::Int,
     .default_value = "5",
     .min = 1,
     .max = 1000000,
     .help = "random points per image"},
    {.name = "gs_stdevs",
     .type = OptionType::Float,
     .default_value = "0",
     .min = 0,
     .help = "the input noise's standard deviation",
     .captum = "stdevs"},
    {.name = "multiply_by_inputs",
     .type = OptionType::Bool,
     .default_value = "true",
     .help = "(inputs - baselines) * gradients, or the gradients alone"},
    kSeedOption,
    kDeltaOption};

std::unique_ptr<Attribution> make_gradient_shap(nn::Module& model, const MethodArgs& args) {
  // Inside a NoiseTunnel the saved draws are the tunnel's.
  const bool tunnel = args.has("noise_tunnel") && !args.text("noise_tunnel").empty();
  return std::make_unique<GradientShap>(
      model,
      GradientShapOptions{.n_samples = static_cast<int>(args.integer("n_samples")),
                          .stdevs = static_cast<float>(args.number("gs_stdevs")),
                          .multiply_by_inputs = args.flag("multiply_by_inputs"),
                          .seed = static_cast<std::uint64_t>(args.integer("seed")),
                          .image_ids = {},
                          .draws = tunnel ? std::nullopt : args.draws,
                          .return_convergence_delta = args.flag("delta")});
}

}  // namespace

extern const MethodInfo gradient_shap_method{.name = "gradient_shap",
                                             .captum_class = "GradientShap",
                                             .baselines = Baselines::Distribution,
                                             .stochastic = true,
                                             .has_delta = true,
                                             .options = kGradientShapOptions,
                                             .make = &make_gradient_shap};

}  // namespace gradlens::attr
