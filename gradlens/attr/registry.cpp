#include "gradlens/attr/registry.h"

#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "gradlens/attr/interpolate.h"
#include "gradlens/attr/noise_tunnel.h"
#include "gradlens/nn/safetensors.h"

// One line per method: the MethodInfo its own .cpp defines. The order is the documentation's.
#define GRADLENS_ATTRIBUTION_METHODS(X) \
  X(saliency_method)                    \
  X(input_x_gradient_method)            \
  X(integrated_gradients_method)        \
  X(deeplift_method)                    \
  X(deeplift_shap_method)               \
  X(gradient_shap_method)               \
  X(guided_backprop_method)             \
  X(deconvolution_method)               \
  X(layer_grad_cam_method)              \
  X(guided_grad_cam_method)             \
  X(lrp_method)                         \
  X(occlusion_method)                   \
  X(feature_ablation_method)

namespace gradlens::attr {

#define GRADLENS_DECLARE_METHOD(info) extern const MethodInfo info;
GRADLENS_ATTRIBUTION_METHODS(GRADLENS_DECLARE_METHOD)
#undef GRADLENS_DECLARE_METHOD

namespace {

[[noreturn]] void bad(const std::string& message) {
  throw std::invalid_argument("[attribute] " + message);
}

[[noreturn]] void bad_option(std::string_view option, const std::string& message) {
  throw OptionError(std::string(option), "[attribute] " + message);
}

const std::vector<MethodInfo>& all_methods() {
#define GRADLENS_METHOD_ENTRY(info) info,
  static const std::vector<MethodInfo> all = {GRADLENS_ATTRIBUTION_METHODS(GRADLENS_METHOD_ENTRY)};
#undef GRADLENS_METHOD_ENTRY
  return all;
}

std::optional<std::int64_t> to_int(std::string_view text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<double> to_double(std::string_view text) {
  // strtod accepts what a user writes (1e-9, .5); the whole text must be the number.
  const std::string s(text);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<Shape> to_shape(std::string_view text) {
  Shape out;
  while (true) {
    const auto comma = text.find(',');
    const auto v = to_int(text.substr(0, comma));
    if (!v || *v < 1) return std::nullopt;
    out.push_back(*v);
    if (comma == std::string_view::npos) return out;
    text.remove_prefix(comma + 1);
  }
}

// Whole numbers in full (2147483647, not 2.14748e+09), others as the stream writes them.
std::string number_text(double v) {
  std::ostringstream s;
  if (v == std::floor(v) && std::abs(v) < 1e15)
    s << static_cast<long long>(v);
  else
    s << v;
  return s.str();
}

// Throws unless `value` is a valid `spec`; returns it in its canonical spelling.
std::string check_value(std::string_view method, const OptionSpec& spec, const std::string& value) {
  const std::string where =
      std::string(method) + " option " + std::string(spec.name) + " = '" + value + "'";
  auto in_range = [&](double v) {
    if (v < spec.min || v > spec.max)
      bad_option(
          spec.name,
          where + " is out of range: " + number_text(spec.min) + " to " + number_text(spec.max));
  };
  switch (spec.type) {
    case OptionType::Int: {
      const auto v = to_int(value);
      if (!v) bad_option(spec.name, where + " is not an integer");
      in_range(static_cast<double>(*v));
      return std::to_string(*v);
    }
    case OptionType::Float: {
      const auto v = to_double(value);
      if (!v) bad_option(spec.name, where + " is not a finite number");
      in_range(*v);
      return value;
    }
    case OptionType::Bool:
    case OptionType::Switch:
      if (value == "true" || value == "1") return "true";
      if (value == "false" || value == "0") return "false";
      bad_option(spec.name, where + " is not true or false");
    case OptionType::Text: {
      if (spec.choices.empty() || (value.empty() && spec.default_value.empty())) return value;
      std::string_view rest = spec.choices;
      while (true) {
        const auto comma = rest.find(',');
        if (rest.substr(0, comma) == value) return value;
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
      bad_option(spec.name, where + " is not one of " + std::string(spec.choices));
    }
    case OptionType::Shape:
      if (!to_shape(value))
        bad_option(spec.name, where + " is not a list of sizes >= 1 like 3,8,8");
      return value;
  }
  bad_option(spec.name, where + ": unknown option type");
}

const OptionSpec* find_spec(std::span<const OptionSpec> specs, std::string_view name) {
  for (const OptionSpec& s : specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

bool wants_tunnel(const MethodArgs& args) {
  const auto it = args.values.find("noise_tunnel");
  return it != args.values.end() && !it->second.empty();
}

std::string option_names(std::span<const OptionSpec> specs) {
  std::string text;
  for (const OptionSpec& s : specs) text += (text.empty() ? "" : ", ") + std::string(s.name);
  return text.empty() ? "none" : text;
}

const std::string& value_of(const MethodArgs& args, std::string_view name) {
  const auto it = args.values.find(name);
  if (it == args.values.end())
    throw std::logic_error("[attribute] option " + std::string(name) +
                           " read but not declared by the method");
  return it->second;
}

void describe_options(std::string& out, std::span<const OptionSpec> specs, const MethodArgs& args) {
  for (const OptionSpec& s : specs) {
    if (s.name == "noise_tunnel") continue;
    out += (out.back() == '(' ? "" : ", ") + std::string(s.name) + "=" + value_of(args, s.name);
  }
}

}  // namespace

std::int64_t MethodArgs::integer(std::string_view name) const {
  return *to_int(value_of(*this, name));
}
double MethodArgs::number(std::string_view name) const { return *to_double(value_of(*this, name)); }
bool MethodArgs::flag(std::string_view name) const { return value_of(*this, name) == "true"; }
const std::string& MethodArgs::text(std::string_view name) const { return value_of(*this, name); }
Shape MethodArgs::shape(std::string_view name) const { return *to_shape(value_of(*this, name)); }

std::span<const MethodInfo> methods() { return all_methods(); }

std::string method_names_text() {
  std::string text;
  for (const MethodInfo& m : methods()) text += (text.empty() ? "" : ", ") + std::string(m.name);
  return text;
}

const MethodInfo& method_info(std::string_view name) {
  for (const MethodInfo& m : methods()) {
    if (m.name == name) return m;
  }
  bad("unknown method '" + std::string(name) + "'; valid methods: " + method_names_text());
}

MethodArgs resolve_args(std::string_view name, const MethodArgs& args) {
  const MethodInfo& info = method_info(name);
  const bool tunnel = wants_tunnel(args);
  for (const auto& [key, value] : args.values) {
    if (find_spec(info.options, key) != nullptr) continue;
    if (find_spec(noise_tunnel_options(), key) != nullptr) {
      if (tunnel || key == "noise_tunnel") continue;
      bad_option(key,
                 "option " + key + " is NoiseTunnel's: it needs noise_tunnel (smoothgrad, " +
                     "smoothgrad_sq or vargrad)");
    }
    bad_option(key,
               std::string(name) + " takes no option " + key +
                   " (its options: " + option_names(info.options) + ")");
  }
  MethodArgs resolved = args;
  auto fill = [&](std::span<const OptionSpec> specs) {
    for (const OptionSpec& s : specs) {
      auto it = resolved.values.find(s.name);
      if (it == resolved.values.end()) {
        resolved.values.emplace(std::string(s.name), std::string(s.default_value));
      } else {
        it->second = check_value(name, s, it->second);
      }
    }
  };
  fill(info.options);
  if (tunnel) fill(noise_tunnel_options());
  if (args.internal_batch_size < 0)
    bad_option("internal_batch_size", "internal_batch_size must be >= 0");
  return resolved;
}

std::unique_ptr<Attribution> make_method(std::string_view name,
                                         nn::Module& model,
                                         const MethodArgs& args) {
  const MethodInfo& info = method_info(name);
  const MethodArgs resolved = resolve_args(name, args);
  auto batch = [&resolved](Attribution& method) {
    method.batching().set_max_rows(resolved.internal_batch_size);
    method.batching().set_memory_budget(resolved.memory_budget);
    method.batching().set_concurrency(resolved.concurrency);
  };
  std::unique_ptr<Attribution> base = info.make(model, resolved);
  batch(*base);
  if (!wants_tunnel(resolved)) return base;
  auto tunnel = std::make_unique<NoiseTunnel>(
      std::shared_ptr<Attribution>(std::move(base)),
      NoiseTunnelOptions{
          .type = parse_noise_tunnel_type(resolved.text("noise_tunnel")),
          .nt_samples = static_cast<int>(resolved.integer("nt_samples")),
          .nt_samples_batch_size = static_cast<int>(resolved.integer("nt_samples_batch_size")),
          .stdevs = static_cast<float>(resolved.number("stdevs")),
          .seed = static_cast<std::uint64_t>(resolved.integer("seed")),
          .image_ids = {},
          .draws = resolved.draws});
  batch(*tunnel);
  return tunnel;
}

std::string describe_method(std::string_view name, const MethodArgs& args) {
  const MethodInfo& info = method_info(name);
  const MethodArgs resolved = resolve_args(name, args);
  std::string text = std::string(name) + "(";
  describe_options(text, info.options, resolved);
  if (!resolved.feature_mask.empty()) {
    std::int64_t features = 0;
    for (std::int64_t id : resolved.feature_mask) features = std::max(features, id + 1);
    text += (text.back() == '(' ? "" : ", ") + std::string("feature_mask=") +
            shape_str(resolved.mask_shape) + " (" + std::to_string(features) + " features)";
  }
  text += ")";
  if (!wants_tunnel(resolved)) return text;
  std::string tunnel = "noise_tunnel(" + resolved.text("noise_tunnel");
  describe_options(tunnel, noise_tunnel_options(), resolved);
  return tunnel + ") of " + text;
}

Tensor upsample_layer_maps(std::string_view name,
                           const MethodArgs& args,
                           const Tensor& values,
                           std::int64_t height,
                           std::int64_t width) {
  const auto mode = args.values.find("interpolate");
  if (!method_info(name).layer_output || mode == args.values.end() || mode->second.empty() ||
      values.dim() != 4)
    return values;
  return interpolate(values, height, width, parse_interpolation(mode->second));
}

Tensor load_baselines(const std::string& path) {
  const nn::SafetensorsFile file = nn::SafetensorsFile::load(path);
  for (const char* name : {"baselines", "baseline_set"}) {
    if (file.contains(name)) return file.tensor(name);
  }
  throw std::invalid_argument("[baselines] " + path +
                              " has neither a tensor 'baselines' nor 'baseline_set'");
}

RandomDraws load_draws(const std::string& path, const std::string& prefix) {
  const nn::SafetensorsFile file = nn::SafetensorsFile::load(path);
  RandomDraws draws;
  bool any = false;
  if (file.contains(prefix + "noise")) {
    draws.noise = file.tensor(prefix + "noise");
    any = true;
  }
  if (file.contains(prefix + "baseline_index")) {
    draws.baseline_index = file.int64s(prefix + "baseline_index");
    any = true;
  }
  if (file.contains(prefix + "alphas")) {
    for (double a : file.float64s(prefix + "alphas")) draws.alphas.push_back(static_cast<float>(a));
    any = true;
  }
  if (!any)
    throw std::invalid_argument("[draws] " + path + " has none of " + prefix + "noise, " + prefix +
                                "baseline_index, " + prefix + "alphas");
  return draws;
}

}  // namespace gradlens::attr
