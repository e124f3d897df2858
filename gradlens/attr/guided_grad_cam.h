// GuidedGradCam (Captum defaults): GuidedBackprop(x) * interpolate(LayerGradCam(relu=true), H x W),
// the [N, 1, H, W] map broadcast over the input channels. Captum upsamples with 'nearest' by
// default (the paper uses bilinear).
#pragma once

#include <string>

#include "gradlens/attr/guided_backprop.h"
#include "gradlens/attr/interpolate.h"
#include "gradlens/attr/layer_grad_cam.h"
#include "gradlens/export.h"

namespace gradlens::attr {

struct GRADLENS_API GuidedGradCamOptions {
  Interpolation mode = Interpolation::Nearest;
  bool attribute_to_layer_input = false;
};

class GRADLENS_API GuidedGradCam : public Attribution {
 public:
  using Options = GuidedGradCamOptions;
  /// `layer` as for LayerGradCam; the model must outlive this object.
  GuidedGradCam(nn::Module& model, std::string layer, Options options = {});

  std::string_view name() const override { return "guided_grad_cam"; }
  /// inputs [N, C, H, W] -> [N, C, H, W]; the layer must give [N, K, H', W'] maps. Baselines are
  /// ignored.
  Attributions attribute(const Tensor& inputs,
                         const Targets& targets,
                         const Tensor& baselines = {}) override;
  const Options& options() const { return options_; }

 private:
  Options options_;
  LayerGradCam cam_;
  GuidedBackprop guided_;
};

}  // namespace gradlens::attr
