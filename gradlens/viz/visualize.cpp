#include "gradlens/viz/visualize.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace gradlens::viz {
namespace {

[[noreturn]] void invalid(std::string_view name, const std::string& what) {
  throw std::invalid_argument("[viz] " + std::string(name) + ": " + what);
}

}  // namespace

Sign parse_sign(std::string_view name) {
  if (name == "all") return Sign::All;
  if (name == "positive") return Sign::Positive;
  if (name == "negative") return Sign::Negative;
  if (name == "absolute_value") return Sign::AbsoluteValue;
  throw std::invalid_argument("[viz] unknown sign '" + std::string(name) +
                              "' (all, positive, negative, absolute_value)");
}

std::string_view to_string(Sign sign) {
  switch (sign) {
    case Sign::All:
      return "all";
    case Sign::Positive:
      return "positive";
    case Sign::Negative:
      return "negative";
    case Sign::AbsoluteValue:
      return "absolute_value";
  }
  return "?";
}

Method parse_method(std::string_view name) {
  if (name == "heat_map") return Method::HeatMap;
  if (name == "blended_heat_map") return Method::BlendedHeatMap;
  if (name == "original_image") return Method::OriginalImage;
  if (name == "masked_image") return Method::MaskedImage;
  if (name == "alpha_scaling") return Method::AlphaScaling;
  throw std::invalid_argument("[viz] unknown method '" + std::string(name) +
                              "' (heat_map, blended_heat_map, original_image, masked_image, "
                              "alpha_scaling)");
}

std::string_view to_string(Method method) {
  switch (method) {
    case Method::HeatMap:
      return "heat_map";
    case Method::BlendedHeatMap:
      return "blended_heat_map";
    case Method::OriginalImage:
      return "original_image";
    case Method::MaskedImage:
      return "masked_image";
    case Method::AlphaScaling:
      return "alpha_scaling";
  }
  return "?";
}

std::int64_t cumulative_sum_threshold_index(std::vector<float>& values, double percentile) {
  if (values.empty()) throw std::invalid_argument("[viz] cumulative_sum_threshold: no values");
  std::sort(values.begin(), values.end());
  std::vector<double> cumsum(values.size());
  double acc = 0;
  for (std::size_t i = 0; i < values.size(); ++i) cumsum[i] = acc += values[i];
  const double target = cumsum.back() * 0.01 * percentile;
  const auto it = std::lower_bound(cumsum.begin(), cumsum.end(), target);
  // cumsum is non-decreasing for the non-negative values Captum passes; guard rounding anyway.
  if (it == cumsum.end()) return static_cast<std::int64_t>(values.size()) - 1;
  return it - cumsum.begin();
}

NormalizedMap normalize_attr(std::span<const float> attr,
                             Layout layout,
                             int channels,
                             int height,
                             int width,
                             Sign sign,
                             double outlier_perc,
                             std::string_view name) {
  if (channels <= 0 || height <= 0 || width <= 0) {
    std::ostringstream s;
    s << "shape [C=" << channels << ", H=" << height << ", W=" << width << "] must be positive";
    invalid(name, s.str());
  }
  const std::size_t hw = static_cast<std::size_t>(height) * static_cast<std::size_t>(width);
  if (attr.size() != hw * static_cast<std::size_t>(channels)) {
    std::ostringstream s;
    s << "has " << attr.size() << " values, expected C*H*W = " << channels << "*" << height << "*"
      << width << " = " << hw * static_cast<std::size_t>(channels);
    invalid(name, s.str());
  }
  if (!(outlier_perc >= 0 && outlier_perc < 100)) {
    invalid(name, "outlier_perc " + std::to_string(outlier_perc) + " is outside [0, 100)");
  }
  for (std::size_t i = 0; i < attr.size(); ++i) {
    if (std::isnan(attr[i])) {
      std::ostringstream s;
      s << "NaN at flat index " << i << " (" << (layout == Layout::HWC ? "HWC" : "CHW")
        << " layout); cannot normalize an attribution with NaN";
      invalid(name, s.str());
    }
  }

  NormalizedMap out;
  out.height = height;
  out.width = width;
  // 1. Signed channel sum in float32, channel 0 first (numpy's np.sum(axis=2) for 3 channels).
  std::vector<float> summed(hw, 0.f);
  for (std::size_t p = 0; p < hw; ++p) {
    float s = 0.f;
    for (int c = 0; c < channels; ++c) {
      s += layout == Layout::HWC ? attr[p * static_cast<std::size_t>(channels) + c]
                                 : attr[static_cast<std::size_t>(c) * hw + p];
    }
    summed[p] = s;
  }
  // 2. Sign step; `mass` is what the threshold is taken over (non-negative).
  std::vector<float> mass(hw);
  for (std::size_t p = 0; p < hw; ++p) {
    float& v = summed[p];
    switch (sign) {
      case Sign::All:
        mass[p] = std::fabs(v);
        break;
      case Sign::Positive:
        v = v > 0.f ? v : 0.f;
        mass[p] = v;
        break;
      case Sign::Negative:
        v = v < 0.f ? v : 0.f;
        mass[p] = -v;
        break;
      case Sign::AbsoluteValue:
        v = std::fabs(v);
        mass[p] = v;
        break;
    }
  }
  // 3. Cumulative-mass threshold.
  out.threshold_index = cumulative_sum_threshold_index(mass, 100.0 - outlier_perc);
  float threshold = mass[static_cast<std::size_t>(out.threshold_index)];
  if (sign == Sign::Negative) threshold = -threshold;
  out.threshold = threshold;
  out.values.assign(hw, 0.f);
  if (threshold == 0.f) {
    out.warning = "[viz] " + std::string(name) +
                  ": normalization threshold is 0 (the attribution is zero where it counts); "
                  "drawing an all-zero map";
    return out;
  }
  if (std::fabs(threshold) < 1e-5f) {
    out.warning = "[viz] " + std::string(name) +
                  ": normalization threshold is very small (|thr| < 1e-5); the attribution "
                  "may be tiny everywhere";
  }
  // 4. clip(v / thr, -1, 1) in float32.
  for (std::size_t p = 0; p < hw; ++p) {
    out.values[p] = std::clamp(summed[p] / threshold, -1.f, 1.f);
  }
  return out;
}

NormalizedMap normalize_attr(const Tensor& attr_chw,
                             Sign sign,
                             double outlier_perc,
                             std::string_view name) {
  Shape shape = attr_chw.shape();
  if (shape.size() == 4 && shape[0] == 1) shape.erase(shape.begin());
  if (shape.size() != 3) {
    std::ostringstream s;
    s << "expected an attribution of shape [C, H, W] or [1, C, H, W], got " << attr_chw.dim()
      << " dimensions";
    invalid(name, s.str());
  }
  const std::vector<float> values = attr_chw.to_vector();
  return normalize_attr(values,
                        Layout::CHW,
                        static_cast<int>(shape[0]),
                        static_cast<int>(shape[1]),
                        static_cast<int>(shape[2]),
                        sign,
                        outlier_perc,
                        name);
}

}  // namespace gradlens::viz
