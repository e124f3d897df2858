// The attribution methods in one list: each one's name, its Captum class and what a caller must
// know before calling it (baselines, a layer, random draws, a delta, layer-sized maps). The command
// line, the report and the benchmarks iterate over it instead of keeping lists of their own.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace gradlens::attr {

/// What the baselines argument means to a method.
enum class Baselines {
  None,         // ignored
  PerInput,     // shaped like the inputs, or one row for all; zeros when undefined
  Distribution  // a set [K, ...] the method draws from or averages over; required
};

struct MethodInfo {
  std::string_view name;          // the command line's and Attribution::name()'s: "deeplift_shap"
  std::string_view captum_class;  // "DeepLiftShap"
  Baselines baselines = Baselines::None;
  bool takes_layer = false;   // built with a layer's dotted name ("conv2")
  bool layer_output = false;  // returns the layer's maps, smaller than the input
  bool stochastic = false;    // random draws (seed, image ids; RandomDraws for Captum's own)
  bool has_delta = false;     // can return a convergence delta
};

/// Every method, in the order the documentation lists them (NoiseTunnel, which wraps any of
/// them, is not one).
std::span<const MethodInfo> methods();

/// The method called `name`; throws std::invalid_argument listing the valid names.
const MethodInfo& method_info(std::string_view name);

/// "saliency, input_x_gradient, ...": the valid names, for messages.
std::string method_names_text();

}  // namespace gradlens::attr
