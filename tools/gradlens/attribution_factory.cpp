// One switch from a Captum method name to a constructed attr:: object, shared by the CLI and the
// attribution benchmarks; every parameter is checked here, so a bad flag never reaches a method.
#include "tools/gradlens/attribution_factory.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "gradlens/attr/approximation.h"
#include "gradlens/attr/deconvolution.h"
#include "gradlens/attr/deep_lift.h"
#include "gradlens/attr/deep_lift_shap.h"
#include "gradlens/attr/feature_ablation.h"
#include "gradlens/attr/gradient_shap.h"
#include "gradlens/attr/guided_backprop.h"
#include "gradlens/attr/guided_grad_cam.h"
#include "gradlens/attr/input_x_gradient.h"
#include "gradlens/attr/integrated_gradients.h"
#include "gradlens/attr/interpolate.h"
#include "gradlens/attr/layer_grad_cam.h"
#include "gradlens/attr/lrp.h"
#include "gradlens/attr/noise_tunnel.h"
#include "gradlens/attr/occlusion.h"
#include "gradlens/attr/registry.h"
#include "gradlens/attr/saliency.h"

namespace gradlens::cli {

namespace {

[[noreturn]] void bad(const std::string& message) { throw std::invalid_argument(message); }

std::string shape_list(const Shape& s) {
  std::string out;
  for (std::int64_t v : s) {
    if (!out.empty()) out += ',';
    out += std::to_string(v);
  }
  return out;
}

std::string fmt(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

const char* yes_no(bool b) { return b ? "true" : "false"; }

std::int64_t parse_int(std::string_view text, const std::string& flag) {
  std::int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty())
    bad(flag + ": '" + std::string(text) + "' is not an integer");
  return v;
}

// The method alone (no NoiseTunnel), and the parameters it used for the log.
std::unique_ptr<attr::Attribution> make_base(const MethodConfig& c,
                                             nn::Module& model,
                                             const attr::RandomDraws* draws,
                                             std::string& params) {
  const attr::ForwardFn forward = [&model](const Tensor& x) { return model(x); };
  const std::string& m = c.method;
  if (m == "saliency") {
    params = std::string("abs=") + yes_no(c.abs);
    return std::make_unique<attr::Saliency>(forward, attr::SaliencyOptions{.abs = c.abs});
  }

  if (m == "input_x_gradient") return std::make_unique<attr::InputXGradient>(forward);

  if (m == "integrated_gradients") {
    if (c.n_steps < 1) bad("--n-steps must be >= 1, got " + std::to_string(c.n_steps));
    const attr::Approximation method = attr::parse_approximation(c.approximation);
    if (method != attr::Approximation::GaussLegendre && c.n_steps < 2)
      bad("--n-steps must be >= 2 for " + c.approximation);
    params = "n_steps=" + std::to_string(c.n_steps) + ", method=" + c.approximation +
             ", multiply_by_inputs=" + yes_no(c.multiply_by_inputs);
    return std::make_unique<attr::IntegratedGradients>(
        forward,
        attr::IntegratedGradientsOptions{.n_steps = c.n_steps,
                                         .method = method,
                                         .multiply_by_inputs = c.multiply_by_inputs,
                                         .return_convergence_delta = c.delta});
  }
  if (m == "deeplift" || m == "deeplift_shap") {
    if (!(c.deeplift_eps >= 0.f)) bad("--eps must be >= 0");
    params = std::string("multiply_by_inputs=") + yes_no(c.multiply_by_inputs) +
             ", eps=" + fmt(c.deeplift_eps);
    const attr::DeepLiftOptions o{.multiply_by_inputs = c.multiply_by_inputs,
                                  .eps = c.deeplift_eps};
    if (m == "deeplift") return std::make_unique<attr::DeepLift>(forward, o);
    return std::make_unique<attr::DeepLiftShap>(forward, o);
  }
  if (m == "gradient_shap") {
    if (c.n_samples < 1) bad("--n-samples must be >= 1, got " + std::to_string(c.n_samples));
    if (!(c.gs_stdevs >= 0.f)) bad("--gs-stdevs must be >= 0");
    params = "n_samples=" + std::to_string(c.n_samples) + ", stdevs=" + fmt(c.gs_stdevs) +
             ", multiply_by_inputs=" + yes_no(c.multiply_by_inputs) +
             ", seed=" + std::to_string(c.seed);
    // With a NoiseTunnel around it, the draws belong to the tunnel.
    attr::GradientShapOptions o{.n_samples = c.n_samples,
                                .stdevs = c.gs_stdevs,
                                .multiply_by_inputs = c.multiply_by_inputs,
                                .seed = c.seed,
                                .image_ids = {},
                                .draws = c.noise_tunnel.empty() && draws != nullptr
                                             ? std::optional<attr::RandomDraws>(*draws)
                                             : std::nullopt,
                                .return_convergence_delta = c.delta};
    return std::make_unique<attr::GradientShap>(forward, std::move(o));
  }

  if (m == "guided_backprop") return std::make_unique<attr::GuidedBackprop>(forward);
  if (m == "deconvolution") return std::make_unique<attr::Deconvolution>(forward);
  if (m == "lrp") {
    if (!(c.lrp_epsilon >= 0.f)) bad("--lrp-epsilon must be >= 0");
    params = "epsilon=" + fmt(c.lrp_epsilon);
    return std::make_unique<attr::LRP>(forward, attr::LRPOptions{.epsilon = c.lrp_epsilon});
  }
  if (m == "layer_grad_cam") {
    if (!c.interpolate.empty()) attr::parse_interpolation(c.interpolate);  // checks the name
    params = "layer=" + c.layer + ", relu_attributions=" + yes_no(c.relu_attributions) +
             ", attribute_to_layer_input=" + yes_no(c.attribute_to_layer_input) +
             (c.interpolate.empty() ? "" : ", interpolate=" + c.interpolate);
    return std::make_unique<attr::LayerGradCam>(
        model,
        c.layer,
        attr::LayerGradCamOptions{.relu_attributions = c.relu_attributions,
                                  .attribute_to_layer_input = c.attribute_to_layer_input});
  }
  if (m == "guided_grad_cam") {
    const attr::Interpolation mode =
        attr::parse_interpolation(c.interpolate.empty() ? "nearest" : c.interpolate);
    params = "layer=" + c.layer + ", interpolate_mode=" + attr::interpolation_name(mode) +
             ", attribute_to_layer_input=" + yes_no(c.attribute_to_layer_input);
    return std::make_unique<attr::GuidedGradCam>(
        model,
        c.layer,
        attr::GuidedGradCamOptions{.mode = mode,
                                   .attribute_to_layer_input = c.attribute_to_layer_input});
  }

  if (m == "occlusion") {
    if (c.perturbations_per_eval < 1) bad("--perturbations-per-eval must be >= 1");
    params = "sliding_window_shapes=(" + shape_list(c.sliding_window_shapes) + "), strides=(" +
             shape_list(c.strides) +
             "), perturbations_per_eval=" + std::to_string(c.perturbations_per_eval);
    return std::make_unique<attr::Occlusion>(
        forward,
        attr::OcclusionOptions{.sliding_window_shapes = c.sliding_window_shapes,
                               .strides = c.strides,
                               .perturbations_per_eval = c.perturbations_per_eval});
  }
  if (m == "feature_ablation") {
    if (c.perturbations_per_eval < 1) bad("--perturbations-per-eval must be >= 1");
    if (!c.feature_mask.empty()) {
      const std::int64_t features =
          *std::max_element(c.feature_mask.begin(), c.feature_mask.end()) + 1;
      params = "feature_mask=" + shape_str(c.mask_shape) + " (" + std::to_string(features) +
               " features), ";
    } else {
      params = "feature_mask=none (every scalar), ";
    }
    params += "perturbations_per_eval=" + std::to_string(c.perturbations_per_eval);
    return std::make_unique<attr::FeatureAblation>(
        forward,
        attr::FeatureAblationOptions{.feature_mask = c.feature_mask,
                                     .mask_shape = c.mask_shape,
                                     .perturbations_per_eval = c.perturbations_per_eval});
  }
  bad("unknown method '" + m + "'; valid methods: " + attr::method_names_text());
}

}  // namespace

BuiltMethod::BuiltMethod(std::shared_ptr<attr::Attribution> base,
                         std::unique_ptr<attr::Attribution> tunnel,
                         std::string description)
    : base_(std::move(base)), tunnel_(std::move(tunnel)), description_(std::move(description)) {}

void BuiltMethod::set_image_ids(const std::vector<std::int64_t>& ids) {
  // A tunnel owns the draws; a GradientShap inside one sees sample rows, not images (see the
  // factory: the tunnel's draws then apply).
  if (auto* tunnel = dynamic_cast<attr::NoiseTunnel*>(tunnel_.get())) {
    tunnel->options().image_ids = ids;
  } else if (auto* shap = dynamic_cast<attr::GradientShap*>(base_.get())) {
    shap->options().image_ids = ids;
  }
}

BuiltMethod make_attribution(const MethodConfig& c, nn::Module& model) {
  if (c.internal_batch_size < 0) bad("--internal-batch-size must be >= 0");
  std::string params;
  const bool has_draws =
      c.draws.noise.defined() || !c.draws.baseline_index.empty() || !c.draws.alphas.empty();
  std::shared_ptr<attr::Attribution> base =
      make_base(c, model, has_draws ? &c.draws : nullptr, params);
  base->batching().set_max_rows(c.internal_batch_size);
  base->batching().set_memory_budget(c.memory_budget);
  // The command line's models have no stateful hooks outside the layer methods' own attribute
  // calls, so independent chunks may run one a CPU thread.
  base->batching().set_concurrency(0);
  std::string description = c.method + "(" + params + ")";

  std::unique_ptr<attr::Attribution> tunnel;
  if (!c.noise_tunnel.empty()) {
    const attr::NoiseTunnelType type = attr::parse_noise_tunnel_type(c.noise_tunnel);
    if (c.nt_samples < 1) bad("--nt-samples must be >= 1, got " + std::to_string(c.nt_samples));
    if (c.nt_samples_batch_size < 0) bad("--nt-samples-batch-size must be >= 0");
    if (!(c.stdevs >= 0.f) || !std::isfinite(c.stdevs)) bad("--stdevs must be >= 0");
    tunnel = std::make_unique<attr::NoiseTunnel>(
        base,
        attr::NoiseTunnelOptions{.type = type,
                                 .nt_samples = c.nt_samples,
                                 .nt_samples_batch_size = static_cast<int>(c.nt_samples_batch_size),
                                 .stdevs = c.stdevs,
                                 .seed = c.seed,
                                 .image_ids = {},
                                 .draws = has_draws ? std::optional(c.draws) : std::nullopt});
    tunnel->batching().set_max_rows(c.internal_batch_size);
    tunnel->batching().set_memory_budget(c.memory_budget);
    description = "noise_tunnel(" + c.noise_tunnel +
                  ", nt_samples=" + std::to_string(c.nt_samples) + ", nt_samples_batch_size=" +
                  (c.nt_samples_batch_size ? std::to_string(c.nt_samples_batch_size) : "all") +
                  ", stdevs=" + fmt(c.stdevs) + ", seed=" + std::to_string(c.seed) + ") of " +
                  description;
  }

  return BuiltMethod(std::move(base), std::move(tunnel), std::move(description));
}

Tensor postprocess(const MethodConfig& c,
                   const Tensor& values,
                   std::int64_t height,
                   std::int64_t width) {
  if (!attr::method_info(c.method).layer_output || c.interpolate.empty() || values.dim() != 4)
    return values;
  return attr::interpolate(values, height, width, attr::parse_interpolation(c.interpolate));
}

Shape parse_shape(const std::string& text, const std::string& flag) {
  Shape out;
  std::string_view rest = text;
  while (true) {
    const auto comma = rest.find(',');
    const std::int64_t v = parse_int(rest.substr(0, comma), flag);
    if (v < 1) bad(flag + ": sizes must be >= 1, got '" + text + "'");
    out.push_back(v);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

std::size_t parse_bytes(const std::string& text, const std::string& flag) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0) bad(flag + ": '" + text + "' is not a size (bytes, or e.g. 512M, 2G)");
  const std::int64_t number = parse_int(std::string_view(text).substr(0, digits), flag);
  std::string unit = text.substr(digits);
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char ch) {
    return static_cast<char>(std::toupper(ch));
  });
  int shift = -1;
  if (unit.empty() || unit == "B") shift = 0;
  for (const auto& [letter, s] : {std::pair{'K', 10}, {'M', 20}, {'G', 30}, {'T', 40}}) {
    const std::string l(1, letter);
    if (unit == l || unit == l + "B" || unit == l + "IB") shift = s;
  }
  if (shift < 0) bad(flag + ": unknown unit in '" + text + "' (use K, M, G or T)");
  if (number > (std::int64_t{1} << (62 - shift))) bad(flag + ": '" + text + "' is too large");
  return static_cast<std::size_t>(number) << shift;
}

std::vector<std::int64_t> parse_indices(const std::string& text,
                                        std::int64_t limit,
                                        const std::string& flag) {
  std::vector<std::int64_t> out;
  if (text == "all") {
    for (std::int64_t i = 0; i < limit; ++i) out.push_back(i);
    return out;
  }
  std::string_view rest = text;
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    const auto colon = item.find(':');
    std::int64_t begin = 0, end = 0;
    if (colon == std::string_view::npos) {
      begin = parse_int(item, flag);
      end = begin + 1;
    } else {
      begin = parse_int(item.substr(0, colon), flag);
      end = parse_int(item.substr(colon + 1), flag);
      if (end <= begin) bad(flag + ": empty range '" + std::string(item) + "'");
    }
    if (begin < 0 || end > limit)
      bad(flag + ": '" + std::string(item) + "' is out of range (the set has " +
          std::to_string(limit) + " images, 0.." + std::to_string(limit - 1) + ")");
    for (std::int64_t i = begin; i < end; ++i) out.push_back(i);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace gradlens::cli
