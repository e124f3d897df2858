// LayerGradCam (Captum defaults): the map of a named layer's activation A [N, C, H', W'] weighted
// by its spatially averaged gradient, cam = sum_c mean_hw(d f_t / d A_c) * A_c -> [N, 1, H', W']
// (a 2-D layer [N, D] gives sum_d (d f_t / d A_d) * A_d -> [N, 1]). relu_attributions clips it at 0
// (the paper's GradCAM). One forward and one grad() call per chunk of rows.
#pragma once

#include <string>

#include "gradlens/attr/attribution.h"
#include "gradlens/export.h"
#include "gradlens/nn/module.h"

namespace gradlens::attr {

struct GRADLENS_API LayerGradCamOptions {
  bool relu_attributions = false;
  bool attribute_to_layer_input = false;  // the layer's input instead of its output
};

class GRADLENS_API LayerGradCam : public Attribution {
 public:
  using Options = LayerGradCamOptions;
  /// `layer` is a dotted module path of `model` ("conv2"); an unknown name is an
  /// std::invalid_argument listing the valid ones. The model must outlive this object.
  LayerGradCam(nn::Module& model, std::string layer, Options options = {});

  std::string_view name() const override { return "layer_grad_cam"; }
  /// values: [N, 1, H', W'] for a layer producing [N, C, H', W']. Baselines are ignored.
  Attributions attribute(const Tensor& inputs,
                         const Targets& targets,
                         const Tensor& baselines = {}) override;
  const std::string& layer() const { return layer_name_; }
  Options& options() { return options_; }

 private:
  nn::Module& layer_;
  std::string layer_name_;
  Options options_;
};

/// The submodule `path` of `model`, or std::invalid_argument("[method] ... valid layers: ...").
GRADLENS_API nn::Module& find_layer(nn::Module& model,
                                    const std::string& path,
                                    std::string_view method);

}  // namespace gradlens::attr
