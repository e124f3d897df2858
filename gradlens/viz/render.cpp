#include "gradlens/viz/render.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "gradlens/viz/grid.h"

namespace gradlens::viz {
namespace {

[[noreturn]] void invalid(const std::string& what) {
  throw std::invalid_argument("[viz] render: " + what);
}

std::uint8_t clip_byte(double v) {
  // astype(int) truncates toward zero, then clip to 0..255.
  const double t = std::trunc(v);
  return static_cast<std::uint8_t>(std::clamp(t, 0.0, 255.0));
}

}  // namespace

std::vector<int> prepare_image(std::span<const float> hwc) {
  std::vector<int> out(hwc.size());
  if (hwc.empty()) return out;
  const float max = *std::max_element(hwc.begin(), hwc.end());
  const bool scale = max <= 1.0f;
  for (std::size_t i = 0; i < hwc.size(); ++i) {
    const float v = scale ? hwc[i] * 255.0f : hwc[i];  // float32 product, as numpy does
    out[i] = clip_byte(static_cast<double>(v));
  }
  return out;
}

std::vector<int> image_from_chw_u8(std::span<const std::uint8_t> chw, int height, int width) {
  const std::size_t hw = static_cast<std::size_t>(height) * width;
  if (chw.size() != 3 * hw) invalid("CHW image has " + std::to_string(chw.size()) + " bytes");
  std::vector<int> out(3 * hw);
  for (std::size_t p = 0; p < hw; ++p) {
    for (std::size_t c = 0; c < 3; ++c) out[p * 3 + c] = chw[c * hw + p];
  }
  return out;
}

std::vector<float> original_from_normalized_chw(std::span<const float> chw, int height, int width) {
  const std::size_t hw = static_cast<std::size_t>(height) * width;
  if (chw.size() != 3 * hw) invalid("CHW input has " + std::to_string(chw.size()) + " values");
  std::vector<float> out(3 * hw);
  for (std::size_t p = 0; p < hw; ++p) {
    for (std::size_t c = 0; c < 3; ++c) out[p * 3 + c] = chw[c * hw + p] / 2.0f + 0.5f;
  }
  return out;
}

std::vector<double> background_gray(std::span<const int> image_hwc, int height, int width) {
  const std::size_t hw = static_cast<std::size_t>(height) * width;
  if (image_hwc.size() != 3 * hw)
    invalid("image has " + std::to_string(image_hwc.size()) + " values");
  std::vector<double> out(hw);
  for (std::size_t p = 0; p < hw; ++p) {
    // np.mean over 3 ints: the int sum (exact) divided by 3 in float64.
    const long sum =
        static_cast<long>(image_hwc[p * 3]) + image_hwc[p * 3 + 1] + image_hwc[p * 3 + 2];
    out[p] = static_cast<double>(sum) / 3.0;
  }
  return out;
}

Image render_panel(const NormalizedMap& map,
                   Sign sign,
                   std::span<const int> image_hwc,
                   const RenderOptions& options) {
  const int h = map.height, w = map.width;
  const std::size_t hw = static_cast<std::size_t>(h) * w;
  if (h <= 0 || w <= 0 || map.values.size() != hw) invalid("normalized map has a bad shape");
  if (options.scale < 1 || options.scale > 256) {
    invalid("scale " + std::to_string(options.scale) + " is outside 1..256");
  }
  if (options.method != Method::HeatMap && image_hwc.size() != 3 * hw) {
    invalid(std::string(to_string(options.method)) + " needs the original image (" +
            std::to_string(3 * hw) + " values), got " + std::to_string(image_hwc.size()));
  }
  if (sign == Sign::All &&
      (options.method == Method::MaskedImage || options.method == Method::AlphaScaling)) {
    invalid(std::string(to_string(options.method)) + " is not allowed with sign 'all' (as Captum)");
  }
  const Colormap cmap = options.cmap.value_or(default_colormap(sign));
  const float vmin = colormap_vmin(sign);
  auto heat = [&](float v) {
    // Normalize(vmin, vmax=1) in float32, then the colormap.
    return color_u8(cmap, (v - vmin) / (1.0f - vmin));
  };

  Image panel = Image::blank(w, h, options.method == Method::AlphaScaling ? 4 : 3);
  switch (options.method) {
    case Method::HeatMap:
      for (std::size_t p = 0; p < hw; ++p) {
        const Rgb8 c = heat(map.values[p]);
        std::copy(c.begin(), c.end(), panel.pixels.begin() + static_cast<std::ptrdiff_t>(p * 3));
      }
      break;
    case Method::BlendedHeatMap: {
      const std::vector<double> gray = background_gray(image_hwc, h, w);
      const auto [lo, hi] = std::minmax_element(gray.begin(), gray.end());
      const double range = *hi - *lo;
      const double a = std::clamp(options.alpha_overlay, 0.0, 1.0);
      for (std::size_t p = 0; p < hw; ++p) {
        const float g01 = range > 0 ? static_cast<float>((gray[p] - *lo) / range) : 0.f;
        const Rgb8 bg = color_u8(Colormap::Gray, g01);
        const Rgb8 fg = heat(map.values[p]);
        for (std::size_t c = 0; c < 3; ++c) {
          panel.pixels[p * 3 + c] =
              static_cast<std::uint8_t>(std::lround(a * fg[c] + (1.0 - a) * bg[c]));
        }
      }
      break;
    }
    case Method::OriginalImage:
      for (std::size_t i = 0; i < 3 * hw; ++i) panel.pixels[i] = clip_byte(image_hwc[i]);
      break;
    case Method::MaskedImage:
      for (std::size_t p = 0; p < hw; ++p) {
        for (std::size_t c = 0; c < 3; ++c) {
          panel.pixels[p * 3 + c] =
              clip_byte(static_cast<double>(image_hwc[p * 3 + c]) * map.values[p]);
        }
      }
      break;
    case Method::AlphaScaling:
      for (std::size_t p = 0; p < hw; ++p) {
        for (std::size_t c = 0; c < 3; ++c) {
          panel.pixels[p * 4 + c] = clip_byte(image_hwc[p * 3 + c]);
        }
        panel.pixels[p * 4 + 3] = clip_byte(static_cast<double>(map.values[p] * 255.0f));
      }
      break;
  }
  Image out = upscale(panel, options.scale);
  if (!options.colorbar) return out;

  // Captum: a horizontal bar 5% of the axes high with pad 0.1; we use max(4, 5% of the height)
  // rows after a white gap. Only the heat-map methods have a bar; the others leave the area blank.
  const int gap = std::max(2, out.height / 10);
  const int bar = std::max(4, out.height / 20 + 1);
  Image framed = Image::blank(out.width, out.height + gap + bar, out.channels);
  std::copy(out.pixels.begin(), out.pixels.end(), framed.pixels.begin());
  const bool has_bar =
      options.method == Method::HeatMap || options.method == Method::BlendedHeatMap;
  if (has_bar) {
    for (int x = 0; x < framed.width; ++x) {
      const float v01 = (static_cast<float>(x) + 0.5f) / static_cast<float>(framed.width);
      const Rgb8 c = color_u8(cmap, v01);
      for (int y = out.height + gap; y < framed.height; ++y)
        std::copy(c.begin(), c.end(), framed.at(x, y));
    }
  }
  return framed;
}

}  // namespace gradlens::viz
