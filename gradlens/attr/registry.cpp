#include "gradlens/attr/registry.h"

#include <array>
#include <stdexcept>

namespace gradlens::attr {
namespace {

constexpr std::array kMethods = {
    MethodInfo{.name = "saliency", .captum_class = "Saliency"},
    MethodInfo{.name = "input_x_gradient", .captum_class = "InputXGradient"},
    MethodInfo{.name = "integrated_gradients",
               .captum_class = "IntegratedGradients",
               .baselines = Baselines::PerInput,
               .has_delta = true},
    MethodInfo{.name = "deeplift",
               .captum_class = "DeepLift",
               .baselines = Baselines::PerInput,
               .has_delta = true},
    MethodInfo{.name = "deeplift_shap",
               .captum_class = "DeepLiftShap",
               .baselines = Baselines::Distribution,
               .has_delta = true},
    MethodInfo{.name = "gradient_shap",
               .captum_class = "GradientShap",
               .baselines = Baselines::Distribution,
               .stochastic = true,
               .has_delta = true},
    MethodInfo{.name = "guided_backprop", .captum_class = "GuidedBackprop"},
    MethodInfo{.name = "deconvolution", .captum_class = "Deconvolution"},
    MethodInfo{.name = "layer_grad_cam",
               .captum_class = "LayerGradCam",
               .takes_layer = true,
               .layer_output = true},
    MethodInfo{.name = "guided_grad_cam", .captum_class = "GuidedGradCam", .takes_layer = true},
    MethodInfo{.name = "lrp", .captum_class = "LRP", .has_delta = true},
    MethodInfo{.name = "occlusion", .captum_class = "Occlusion", .baselines = Baselines::PerInput},
    MethodInfo{.name = "feature_ablation",
               .captum_class = "FeatureAblation",
               .baselines = Baselines::PerInput},
};

}  // namespace

std::span<const MethodInfo> methods() { return kMethods; }

std::string method_names_text() {
  std::string text;
  for (const MethodInfo& m : kMethods) text += (text.empty() ? "" : ", ") + std::string(m.name);
  return text;
}

const MethodInfo& method_info(std::string_view name) {
  for (const MethodInfo& m : kMethods) {
    if (m.name == name) return m;
  }
  throw std::invalid_argument("[attribute] unknown method '" + std::string(name) +
                              "'; valid methods: " + method_names_text());
}

}  // namespace gradlens::attr
