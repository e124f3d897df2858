// Captum's attribution normalization (captum/attr/_utils/visualization.py, _normalize_attr): the
// signed channel sum, the sign step, the cumulative-mass outlier threshold and clip(v / thr, -1,
// 1). This map is what every Captum heat map draws; render.h turns it into pixels.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gradlens/autograd/tensor.h"
#include "gradlens/export.h"

namespace gradlens::viz {

/// Which part of the attribution is shown (Captum's `sign`).
enum class Sign { All, Positive, Negative, AbsoluteValue };
/// How it is drawn (Captum's `method`).
enum class Method { HeatMap, BlendedHeatMap, OriginalImage, MaskedImage, AlphaScaling };
/// Memory order of one image's attribution: [H, W, C] as Captum's visualizer takes it, or [C, H, W]
/// as the attribution methods return it.
enum class Layout { HWC, CHW };

/// Captum's names: "all", "positive", "negative", "absolute_value"; throws std::invalid_argument.
GRADLENS_API Sign parse_sign(std::string_view name);
GRADLENS_API std::string_view to_string(Sign sign);
/// "heat_map", "blended_heat_map", "original_image", "masked_image", "alpha_scaling".
GRADLENS_API Method parse_method(std::string_view name);
GRADLENS_API std::string_view to_string(Method method);

struct GRADLENS_API NormalizedMap {
  std::vector<float> values;  // [height, width] row-major, in [-1, 1] (All) or [0, 1]
  int height = 0, width = 0;
  double threshold = 0;               // the scale divided by (negated for Sign::Negative)
  std::int64_t threshold_index = -1;  // its place in the ascending sort of the height*width values
  std::string warning;                // non-empty when |threshold| < 1e-5 (all zeros when it is 0)
};

/// Captum's _cumulative_sum_threshold(values, percentile): sort ascending, cumulative sum (double),
/// the first index i with c[i] >= c[-1] * 0.01 * percentile; returns that index.
GRADLENS_API std::int64_t cumulative_sum_threshold_index(std::vector<float>& sorted_scratch,
                                                         double percentile);

/// Captum's _normalize_attr(attr, sign, outlier_perc, reduction_axis=channels) for one image.
/// `attr` holds channels*height*width floats in `layout`. Throws std::invalid_argument naming
/// `name` on a size/shape mismatch, a NaN or an outlier_perc outside [0, 100). A zero threshold
/// gives an all-zero map and a warning instead of Captum's AssertionError.
GRADLENS_API NormalizedMap normalize_attr(std::span<const float> attr,
                                          Layout layout,
                                          int channels,
                                          int height,
                                          int width,
                                          Sign sign,
                                          double outlier_perc = 2.0,
                                          std::string_view name = "attribution");

/// The same for a CPU tensor [C, H, W] (or [1, C, H, W]), as the attr/ methods return per row.
GRADLENS_API NormalizedMap normalize_attr(const Tensor& attr_chw,
                                          Sign sign,
                                          double outlier_perc = 2.0,
                                          std::string_view name = "attribution");

}  // namespace gradlens::viz
