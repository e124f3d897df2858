// guided_grad_cam = guided_backprop(x) [N, C, H, W] * up(relu(cam)) [N, 1, H, W], where up is
// nearest (default) or bilinear resampling of the layer map to the input's H x W.
#include "gradlens/attr/guided_grad_cam.h"

#include <memory>

#include "gradlens/attr/registry.h"
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"

namespace gradlens::attr {

namespace {

// The layer's name once it is known to exist, so an unknown one is reported by this method.
std::string checked_layer(nn::Module& model, std::string layer) {
  find_layer(model, layer, "guided_grad_cam");
  return layer;
}

}  // namespace

GuidedGradCam::GuidedGradCam(nn::Module& model, std::string layer, Options options)
    : Attribution([&model](const Tensor& x) { return model(x); }),
      options_(options),
      cam_(model,
           checked_layer(model, std::move(layer)),
           {.relu_attributions = true,
            .attribute_to_layer_input = options.attribute_to_layer_input}),
      guided_(forward_) {}

Attributions GuidedGradCam::attribute(const Tensor& inputs, const Targets& targets, const Tensor&) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() == 4 && inputs.size(0) > 0,
                 "[guided_grad_cam] expects images [N, C, H, W], got ",
                 inputs.defined() ? shape_str(inputs.shape()) : std::string("an undefined tensor"));
  cam_.batching().set_max_rows(planner_.max_rows());
  guided_.batching().set_max_rows(planner_.max_rows());
  const Tensor cam = cam_.attribute(inputs, targets).values;
  GRADLENS_CHECK(cam.dim() == 4,
                 "[guided_grad_cam] layer '",
                 cam_.layer(),
                 "' gives maps ",
                 shape_str(cam.shape()),
                 ", not [N, 1, H', W'] that can be resized to the input ",
                 shape_str(inputs.shape()));
  const Tensor up = interpolate(cam, inputs.size(2), inputs.size(3), options_.mode);
  const Tensor guided = guided_.attribute(inputs, targets).values;
  NoGradGuard no_grad;
  Attributions out;
  out.values = mul(guided, up);
  return out;
}

}  // namespace gradlens::attr

// Its entry in the method registry (registry.h).
namespace gradlens::attr {
namespace {

constexpr OptionSpec kGuidedGradCamOptions[] = {kLayerOption,
                                                kAttributeToLayerInputOption,
                                                {.name = "interpolate",
                                                 .type = OptionType::Text,
                                                 .default_value = "nearest",
                                                 .choices = "nearest,bilinear",
                                                 .help = "how the GradCAM map is upsampled",
                                                 .captum = "interpolate_mode"}};

std::unique_ptr<Attribution> make_guided_grad_cam(nn::Module& model, const MethodArgs& args) {
  return std::make_unique<GuidedGradCam>(
      model,
      args.text("layer"),
      GuidedGradCamOptions{.mode = parse_interpolation(args.text("interpolate")),
                           .attribute_to_layer_input = args.flag("attribute_to_layer_input")});
}

}  // namespace

extern const MethodInfo guided_grad_cam_method{.name = "guided_grad_cam",
                                               .captum_class = "GuidedGradCam",
                                               .takes_layer = true,
                                               .options = kGuidedGradCamOptions,
                                               .make = &make_guided_grad_cam};

}  // namespace gradlens::attr
