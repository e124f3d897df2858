// Captum's visualize_image_attr and visualize_image_attr_multiple on tensors, with its parameter
// names and defaults: an attribution [C, H, W] (or [1, C, H, W]) on any device, the original image
// likewise ([3, H, W], values in [0, 1] or [0, 255] as Captum's _prepare_image takes them), and
// back an 8-bit picture to write with write_png.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "gradlens/autograd/tensor.h"
#include "gradlens/export.h"
#include "gradlens/viz/colormap.h"
#include "gradlens/viz/png.h"
#include "gradlens/viz/visualize.h"

namespace gradlens::viz {

/// Captum's remaining keyword arguments, plus the upscale a 32x32 image needs to be seen.
struct GRADLENS_API VisualizeOptions {
  std::optional<Colormap> cmap;  // default: by sign, as Captum
  double alpha_overlay = 0.5;
  bool show_colorbar = false;
  int scale = 8;  // nearest-neighbour upscale factor (>= 1)
};

/// One panel. original_image may be undefined for Method::HeatMap only. Throws
/// std::invalid_argument naming the shapes when they do not fit, or on a NaN.
GRADLENS_API Image visualize_image_attr(const Tensor& attr,
                                        const Tensor& original_image = {},
                                        Method method = Method::HeatMap,
                                        Sign sign = Sign::AbsoluteValue,
                                        double outlier_perc = 2.0,
                                        const VisualizeOptions& options = {});

/// methods[i] with signs[i] side by side, each under titles[i] (titles empty, or one per panel).
GRADLENS_API Image visualize_image_attr_multiple(const Tensor& attr,
                                                 const Tensor& original_image,
                                                 const std::vector<Method>& methods,
                                                 const std::vector<Sign>& signs,
                                                 const std::vector<std::string>& titles = {},
                                                 double outlier_perc = 2.0,
                                                 const VisualizeOptions& options = {});

}  // namespace gradlens::viz
