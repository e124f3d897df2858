// The attribution methods in one list: each one's name, its Captum class, what a caller must know
// before calling it (baselines, a layer, random draws, a delta, layer-sized maps), its options with
// their defaults and ranges, and how to build it. Each method declares its entry in its own .cpp
// (`extern const MethodInfo saliency_method`) and registry.cpp lists it once; the command line,
// the report and the benchmarks iterate over the list instead of keeping lists of their own.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gradlens/attr/attribution.h"
#include "gradlens/attr/draws.h"
#include "gradlens/autograd/shape.h"
#include "gradlens/export.h"
#include "gradlens/nn/module.h"

namespace gradlens::attr {

/// What the baselines argument means to a method.
enum class Baselines {
  None,         // ignored
  PerInput,     // shaped like the inputs, or one row for all; zeros when undefined
  Distribution  // a set [K, ...] the method draws from or averages over; required
};

enum class OptionType {
  Int,     // a 64-bit integer within [min, max]
  Float,   // a finite number within [min, max]
  Bool,    // true or false
  Switch,  // false unless given (the command line's flags without a value)
  Text,    // one of `choices` (comma-separated), or any text when there are none
  Shape    // sizes >= 1, "3,8,8"
};

/// One option of a method. `name` is the key in MethodArgs::values and, with dashes, the command
/// line's flag (n_steps: --n-steps); `captum` is Captum's parameter name where it differs.
struct OptionSpec {
  std::string_view name = {};
  OptionType type = OptionType::Int;
  std::string_view default_value = {};  // as text: "50", "true", "3,8,8", "" (Text: none)
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  std::string_view choices = {};  // Text: "nearest,bilinear"
  std::string_view help = {};
  std::string_view captum = {};
};

/// A bad option value, or an option the method does not take: std::invalid_argument naming the
/// option, which a caller can map to its own spelling (the command line's --n-steps).
class GRADLENS_API OptionError : public std::invalid_argument {
 public:
  OptionError(std::string option, const std::string& message)
      : std::invalid_argument(message), option_(std::move(option)) {}
  const std::string& option() const { return option_; }

 private:
  std::string option_;
};

/// Options several methods share, declared once.
inline constexpr OptionSpec kSeedOption{.name = "seed",
                                        .type = OptionType::Int,
                                        .default_value = "0",
                                        .min = 0,
                                        .max = 9.2e18,
                                        .help = "seed of the random draws (one stream per image)"};
inline constexpr OptionSpec kDeltaOption{.name = "delta",
                                         .type = OptionType::Switch,
                                         .default_value = "false",
                                         .help = "the convergence delta too",
                                         .captum = "return_convergence_delta"};
inline constexpr OptionSpec kLayerOption{.name = "layer",
                                         .type = OptionType::Text,
                                         .default_value = "conv2",
                                         .help = "the layer's dotted name"};
inline constexpr OptionSpec kAttributeToLayerInputOption{
    .name = "attribute_to_layer_input",
    .type = OptionType::Switch,
    .default_value = "false",
    .help = "the layer's input instead of its output"};

/// How to build a method: option values as text by name (those left out take their defaults),
/// plus what is not text. make_method() checks every value against its OptionSpec first, so the
/// typed reads below see valid values only.
struct GRADLENS_API MethodArgs {
  std::map<std::string, std::string, std::less<>> values;  // {"n_steps", "32"}
  std::optional<RandomDraws> draws;                        // Captum's own draws (--draws)
  std::vector<std::int64_t> feature_mask;                  // feature_ablation; empty: each scalar
  Shape mask_shape;
  std::int64_t internal_batch_size = 0;  // rows per gradient call; 0 = from the memory budget
  std::size_t memory_budget = 0;         // bytes; 0 = the device's default
  int concurrency = 1;                   // BatchPlanner::set_concurrency

  std::int64_t integer(std::string_view name) const;
  double number(std::string_view name) const;
  bool flag(std::string_view name) const;
  const std::string& text(std::string_view name) const;
  Shape shape(std::string_view name) const;
  bool has(std::string_view name) const { return values.find(name) != values.end(); }
};

struct GRADLENS_API MethodInfo {
  std::string_view name = {};  // the command line's and Attribution::name()'s: "deeplift_shap"
  std::string_view captum_class = {};  // "DeepLiftShap"
  Baselines baselines = Baselines::None;
  bool takes_layer = false;   // built with a layer's dotted name ("conv2")
  bool layer_output = false;  // returns the layer's maps, smaller than the input
  bool stochastic = false;    // random draws (seed, image ids; RandomDraws for Captum's own)
  bool has_delta = false;     // can return a convergence delta
  bool perturbation = false;  // occludes or ablates the inputs: forward passes, no gradients
  std::span<const OptionSpec> options = {};
  /// Builds the method on `model` from checked, complete args (make_method calls it).
  std::unique_ptr<Attribution> (*make)(nn::Module& model, const MethodArgs& args) = nullptr;
};

/// Every method, in the order the documentation lists them (NoiseTunnel, which wraps any of
/// them, is not one: see noise_tunnel_options).
GRADLENS_API std::span<const MethodInfo> methods();

/// The method called `name`; throws std::invalid_argument listing the valid names.
GRADLENS_API const MethodInfo& method_info(std::string_view name);

/// "saliency, input_x_gradient, ...": the valid names, for messages.
GRADLENS_API std::string method_names_text();

/// NoiseTunnel's options (noise_tunnel: smoothgrad, smoothgrad_sq or vargrad; nt_samples, ...):
/// given with any method, they wrap it in a NoiseTunnel.
GRADLENS_API std::span<const OptionSpec> noise_tunnel_options();

/// Method `name` on `model` (which must outlive it), inside a NoiseTunnel when args.values has a
/// non-empty "noise_tunnel". An option the method does not take, or a value outside its spec, is
/// an OptionError naming the option, the value and what is accepted.
GRADLENS_API std::unique_ptr<Attribution> make_method(std::string_view name,
                                                      nn::Module& model,
                                                      const MethodArgs& args);

/// args with every option of `name` (and NoiseTunnel's, when used) checked and defaulted.
GRADLENS_API MethodArgs resolve_args(std::string_view name, const MethodArgs& args);

/// "integrated_gradients(n_steps=50, method=gausslegendre, ...)", wrapped in
/// "noise_tunnel(smoothgrad, ...) of ..." when used: every option's value, for logs and manifests.
GRADLENS_API std::string describe_method(std::string_view name, const MethodArgs& args);

/// A layer method's maps [N, C, h, w] upsampled to height x width when args give "interpolate"
/// (Captum's LayerAttribution.interpolate after LayerGradCam); anything else unchanged.
GRADLENS_API Tensor upsample_layer_maps(std::string_view name,
                                        const MethodArgs& args,
                                        const Tensor& values,
                                        std::int64_t height,
                                        std::int64_t width);

/// Reads baselines from a safetensors file: its 'baselines' tensor (one row, or one per input)
/// or its 'baseline_set' (the distribution of DeepLiftShap and GradientShap).
GRADLENS_API Tensor load_baselines(const std::string& path);

/// Reads Captum's saved draws (noise, baseline_index, alphas; each name after `prefix`) from a
/// safetensors file; at least one must be there.
GRADLENS_API RandomDraws load_draws(const std::string& path, const std::string& prefix = "");

}  // namespace gradlens::attr
