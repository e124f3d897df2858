// GradCAM: w_c = mean over the spatial dims of d f_t / d A_c, cam = sum_c w_c * A_c (then relu if
// asked). A forward hook captures the layer's activation; grad() of the picked logits w.r.t. that
// intermediate tensor gives every row's gradient in one backward sweep.
#include "gradlens/attr/layer_grad_cam.h"

#include <memory>

#include "gradlens/attr/registry.h"
#include "gradlens/autograd/engine.h"
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"

namespace gradlens::attr {

nn::Module& find_layer(nn::Module& model, const std::string& path, std::string_view method) {
  nn::Module* layer = model.find(path);
  if (layer == nullptr) {
    std::string valid;
    for (const auto& name : model.module_names()) valid += (valid.empty() ? "" : ", ") + name;
    detail::throw_invalid("[",
                          method,
                          "] unknown layer '",
                          path,
                          "'; valid layers: ",
                          valid.empty() ? "none" : valid);
  }
  return *layer;
}

LayerGradCam::LayerGradCam(nn::Module& model, std::string layer, Options options)
    : Attribution([&model](const Tensor& x) { return model(x); }),
      layer_(find_layer(model, layer, "layer_grad_cam")),
      layer_name_(std::move(layer)),
      options_(options) {}

Attributions LayerGradCam::attribute(const Tensor& inputs, const Targets& targets, const Tensor&) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) > 0,
                 "[layer_grad_cam] inputs must be a non-empty batch");
  const std::int64_t n = inputs.size(0);
  const auto t = expand_targets(targets, n);
  const Shape row_shape(inputs.shape().begin() + 1, inputs.shape().end());
  const std::int64_t rows = planner_.chunk_rows(forward_, row_shape, inputs.device());

  std::vector<Tensor> cams;
  for_each_chunk(n, rows, [&](std::int64_t r0, std::int64_t r1) {
    Tensor activation;
    int calls = 0;
    Tensor grads;
    {
      EnableGradGuard grad_on;
      nn::ForwardHookGuard hook(layer_, [&](const Tensor& in, const Tensor& out) {
        activation = options_.attribute_to_layer_input ? in : out;
        ++calls;
        return out;
      });
      Tensor x = slice(inputs, r0, r1).detach();
      x.set_requires_grad(true);  // keeps the activation on the tape even for parameter-free layers
      const Tensor logits = forward_(x);
      GRADLENS_CHECK(
          calls == 1,
          "[layer_grad_cam] layer '",
          layer_name_,
          "' ran ",
          calls,
          " times in one forward pass; it must run exactly once",
          calls == 0 ? " (the model must call it as layer(x), which runs its hooks)" : "");
      GRADLENS_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) == x.size(0),
                     "[layer_grad_cam] the model must map [N, ...] to logits [N, C]; got ",
                     logits.defined() ? shape_str(logits.shape()) : std::string("nothing"),
                     " for input ",
                     shape_str(x.shape()));
      const std::span<const std::int64_t> chunk_targets(t.data() + r0,
                                                        static_cast<std::size_t>(r1 - r0));
      grads = grad({sum(pick(logits, chunk_targets))}, {activation})[0];
    }
    NoGradGuard no_grad;
    const Tensor a = activation.detach();
    GRADLENS_CHECK(a.dim() >= 2 && a.size(0) == r1 - r0,
                   "[layer_grad_cam] layer '",
                   layer_name_,
                   "' gave ",
                   shape_str(a.shape()),
                   " for a batch of ",
                   r1 - r0,
                   "; expected [N, C, ...]");
    const std::int64_t m = a.size(0), c = a.size(1);
    Shape cam_shape = a.shape();
    cam_shape[1] = 1;
    Tensor weights = grads;  // [m, c] for a 2-D layer
    if (a.dim() > 2) {
      // mean over the dims after the channel one (sum / count, as torch.mean) -> [m, c, 1, ...]
      Shape keep(a.shape().size(), 1);
      keep[0] = m;
      keep[1] = c;
      const Tensor flat = reshape(grads, {m, c, -1});
      const auto count = static_cast<float>(flat.size(2));
      weights = reshape(div(sum_dim(flat, 2), Tensor::scalar(count, a.device())), keep);
    }
    Tensor cam = reshape(sum_dim(mul(weights, a), 1), cam_shape);
    if (options_.relu_attributions) cam = relu(cam);
    cams.push_back(cam);
  });
  Attributions out;
  out.values = cams.size() == 1 ? cams[0] : cat(cams);
  return out;
}

}  // namespace gradlens::attr

// Its entry in the method registry (registry.h).
namespace gradlens::attr {
namespace {

constexpr OptionSpec kLayerGradCamOptions[] = {
    kLayerOption,
    {.name = "relu_attributions",
     .type = OptionType::Switch,
     .default_value = "false",
     .help = "clip the maps at 0"},
    kAttributeToLayerInputOption,
    {.name = "interpolate",
     .type = OptionType::Text,
     .default_value = "",
     .choices = "nearest,bilinear",
     .help = "upsample the maps to the input's size (LayerAttribution.interpolate)"}};

std::unique_ptr<Attribution> make_layer_grad_cam(nn::Module& model, const MethodArgs& args) {
  return std::make_unique<LayerGradCam>(
      model,
      args.text("layer"),
      LayerGradCamOptions{.relu_attributions = args.flag("relu_attributions"),
                          .attribute_to_layer_input = args.flag("attribute_to_layer_input")});
}

}  // namespace

extern const MethodInfo layer_grad_cam_method{.name = "layer_grad_cam",
                                              .captum_class = "LayerGradCam",
                                              .takes_layer = true,
                                              .layer_output = true,
                                              .options = kLayerGradCamOptions,
                                              .make = &make_layer_grad_cam};

}  // namespace gradlens::attr
