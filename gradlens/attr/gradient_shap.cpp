// GradientShap: the N * n_samples sample rows go through batched gradient calls in chunks that fit
// the memory budget; the mean over samples is Captum's smoothgrad (sum * 1 / n).
#include "gradlens/attr/gradient_shap.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "gradlens/attr/batching.h"
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
  const Tensor* given = given_noise(draws, expanded, name());
  const auto t = expand_targets(targets, n);

  // Sample rows in chunks, so the memory budget holds for any n_samples: whole images while their
  // rows fit a chunk (each row holds about six copies: inputs, noise, baseline, point, gradient,
  // product), else one image's samples in parts. Row i * ns + s is the same draw in any chunking;
  // an image's sum runs over its parts in order, so its result does not depend on the others.
  const std::size_t row_bytes = static_cast<std::size_t>(inputs.numel() / n) * sizeof(float);
  const std::size_t chunk_bytes =
      std::min(planner_.memory_budget(inputs.device()), preferred_chunk_bytes(inputs.device()));
  const std::int64_t rows_per_chunk =
      std::max<std::int64_t>(1, static_cast<std::int64_t>(chunk_bytes / (6 * row_bytes)));
  const std::int64_t per_part = std::min(ns, rows_per_chunk);
  const std::int64_t images_per_chunk = std::max<std::int64_t>(1, rows_per_chunk / per_part);
  std::vector<Tensor> sums, deltas;
  for (std::int64_t i0 = 0; i0 < n; i0 += images_per_chunk) {
    const std::int64_t i1 = std::min(n, i0 + images_per_chunk);
    Tensor image_sum;
    for (std::int64_t s0 = 0; s0 < ns; s0 += per_part) {
      const std::int64_t s1 = std::min(ns, s0 + per_part);
      std::vector<std::int64_t> image_of_row, row_of, sample_of, stream_of, target_of;
      std::vector<float> alpha_of;
      for (std::int64_t i = i0; i < i1; ++i) {
        for (std::int64_t s = s0; s < s1; ++s) {
          const std::int64_t r = i * ns + s;
          image_of_row.push_back(i);
          row_of.push_back(index[static_cast<std::size_t>(r)]);
          sample_of.push_back(s);
          stream_of.push_back(streams[static_cast<std::size_t>(i)]);
          target_of.push_back(t[static_cast<std::size_t>(i)]);
          alpha_of.push_back(alphas[static_cast<std::size_t>(r)]);
        }
      }
      const std::int64_t m = static_cast<std::int64_t>(image_of_row.size());
      // (2) noise on the inputs, made on their device
      // NOTE: stdevs 0 (the default) draws nothing: Captum draws zeros, our stream is not torch's.
      const Tensor repeated = index_rows(inputs, image_of_row);
      Tensor xn = repeated;
      if (given != nullptr) {
        std::vector<std::int64_t> given_rows;
        for (std::int64_t r = 0; r < m; ++r)
          given_rows.push_back(image_of_row[static_cast<std::size_t>(r)] * ns +
                               sample_of[static_cast<std::size_t>(r)]);
        xn = add(repeated, index_rows(*given, given_rows).to(inputs.device()));
      } else if (options_.stdevs > 0.f) {
        xn = normal_noise(
            repeated, stream_of, sample_of, options_.stdevs, options_.seed, philox::kNoise);
      }
      const Tensor b = index_rows(baselines, row_of);
      Shape alpha_shape(expanded.size(), 1);
      alpha_shape[0] = m;
      const Tensor alpha = Tensor::from_vector(alpha_of, alpha_shape, inputs.device());
      // alpha * xn + (1 - alpha) * b, every product in float32 as Captum computes it
      const Tensor scaled = add(mul(alpha, xn), mul(affine(alpha, -1.f, 1.f), b));
      const Tensor grads = chunked_gradients(forward_, planner_, scaled, target_of);
      const Tensor per_row = options_.multiply_by_inputs ? mul(sub(xn, b), grads) : grads;
      Shape by_sample = row_shape;
      by_sample.insert(by_sample.begin(), {i1 - i0, s1 - s0});
      const Tensor part = sum_dim(reshape(per_row, by_sample), 1);
      image_sum = image_sum.defined() ? add(image_sum, part) : part;
      if (options_.return_convergence_delta)
        deltas.push_back(convergence_delta(forward_, per_row, xn, b, target_of));
    }
    sums.push_back(image_sum);
  }

  Attributions out;
  out.values = div(sums.size() == 1 ? sums[0] : cat(sums),
                   Tensor::scalar(static_cast<float>(ns), inputs.device()));
  if (!deltas.empty()) out.delta = deltas.size() == 1 ? deltas[0] : cat(deltas);
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
