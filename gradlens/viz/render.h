// One panel drawn as Captum's visualize_image_attr draws it (captum/attr/_utils/visualization.py),
// at an integer nearest-neighbour upscale so a 32x32 CIFAR image is visible, with an optional
// horizontal colour bar below (Captum's show_colorbar).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "gradlens/export.h"
#include "gradlens/viz/colormap.h"
#include "gradlens/viz/png.h"
#include "gradlens/viz/visualize.h"

namespace gradlens::viz {

/// Captum's _prepare_image on an HWC float image: when max <= 1 it is scaled by 255 (float32);
/// then every value is truncated to int and clipped to 0..255. `hwc` holds height*width*3 values.
GRADLENS_API std::vector<int> prepare_image(std::span<const float> hwc);
/// The same from raw CIFAR bytes, CHW [3, H, W] -> HWC ints (what the tutorial's
/// original_image = img/2 + 0.5 becomes after _prepare_image, up to float rounding).
GRADLENS_API std::vector<int> image_from_chw_u8(std::span<const std::uint8_t> chw,
                                                int height,
                                                int width);
/// The tutorial's original_image for a normalized input x in [-1, 1], CHW: x/2 + 0.5, as HWC
/// float32 in [0, 1].
GRADLENS_API std::vector<float> original_from_normalized_chw(std::span<const float> chw,
                                                             int height,
                                                             int width);
/// blended_heat_map's background: the mean over channels of the prepared int image (double).
GRADLENS_API std::vector<double> background_gray(std::span<const int> image_hwc,
                                                 int height,
                                                 int width);

struct GRADLENS_API RenderOptions {
  Method method = Method::BlendedHeatMap;
  double alpha_overlay = 0.5;
  int scale = 8;                 // nearest-neighbour upscale factor (>= 1)
  bool colorbar = false;         // horizontal bar below, as show_colorbar
  std::optional<Colormap> cmap;  // overrides default_colormap(map sign)
};

/// Draws `map` (normalized with `sign`) over `image_hwc` (the prepared 0..255 ints, height*width*3;
/// may be empty for HeatMap only). Returns RGB, or RGBA for AlphaScaling. Throws
/// std::invalid_argument for a missing/mis-sized image, masked_image or alpha_scaling with
/// Sign::All (as Captum), or a bad scale.
GRADLENS_API Image render_panel(const NormalizedMap& map,
                                Sign sign,
                                std::span<const int> image_hwc,
                                const RenderOptions& options = {});

}  // namespace gradlens::viz
