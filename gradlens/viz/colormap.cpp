#include "gradlens/viz/colormap.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace gradlens::viz {
namespace {

constexpr int kN = 256;

// Anchors in 0..1, evenly spaced along the map (LinearSegmentedColormap.from_list). Blues/Greens/
// Reds are matplotlib's _cm.py _Blues_data/_Greens_data/_Reds_data (ColorBrewer) with the exact
// float literals matplotlib holds: lut * 255 is truncated to bytes, so one ulp can move a byte.
using Anchor = std::array<double, 3>;
const std::vector<Anchor>& anchors(Colormap map) {
  // "green" is #008000: matplotlib's to_rgb gives 128 / 255.
  static const std::vector<Anchor> rdwhgn = {
      {1.0, 0.0, 0.0}, {1.0, 1.0, 1.0}, {0.0, 128.0 / 255.0, 0.0}};
  static const std::vector<Anchor> blues = {
      {0.9686274509803922, 0.984313725490196, 1.0},
      {0.8705882352941177, 0.9215686274509803, 0.9686274509803922},
      {0.7764705882352941, 0.8588235294117647, 0.9372549019607843},
      {0.6196078431372549, 0.792156862745098, 0.8823529411764706},
      {0.4196078431372549, 0.6823529411764706, 0.8392156862745098},
      {0.25882352941176473, 0.5725490196078431, 0.7764705882352941},
      {0.12941176470588237, 0.44313725490196076, 0.7098039215686275},
      {0.03137254901960784, 0.3176470588235294, 0.611764705882353},
      {0.03137254901960784, 0.18823529411764706, 0.4196078431372549},
  };
  static const std::vector<Anchor> greens = {
      {0.9686274509803922, 0.9882352941176471, 0.9607843137254902},
      {0.8980392156862745, 0.9607843137254902, 0.8784313725490196},
      {0.7803921568627451, 0.9137254901960784, 0.7529411764705882},
      {0.6313725490196078, 0.8509803921568627, 0.6078431372549019},
      {0.4549019607843137, 0.7686274509803922, 0.4627450980392157},
      {0.2549019607843137, 0.6705882352941176, 0.36470588235294116},
      {0.13725490196078433, 0.5450980392156862, 0.27058823529411763},
      {0.0, 0.42745098039215684, 0.17254901960784313},
      {0.0, 0.26666666666666666, 0.10588235294117647},
  };
  static const std::vector<Anchor> reds = {
      {1.0, 0.9607843137254902, 0.9411764705882353},
      {0.996078431372549, 0.8784313725490196, 0.8235294117647058},
      {0.9882352941176471, 0.7333333333333333, 0.6313725490196078},
      {0.9882352941176471, 0.5725490196078431, 0.4470588235294118},
      {0.984313725490196, 0.41568627450980394, 0.2901960784313726},
      {0.9372549019607843, 0.23137254901960785, 0.17254901960784313},
      {0.796078431372549, 0.09411764705882353, 0.11372549019607843},
      {0.6470588235294118, 0.058823529411764705, 0.08235294117647057},
      {0.403921568627451, 0.0, 0.05098039215686274},
  };
  static const std::vector<Anchor> gray = {{0.0, 0.0, 0.0}, {1.0, 1.0, 1.0}};
  switch (map) {
    case Colormap::RdWhGn:
      return rdwhgn;
    case Colormap::Blues:
      return blues;
    case Colormap::Greens:
      return greens;
    case Colormap::Reds:
      return reds;
    case Colormap::Gray:
      return gray;
  }
  throw std::invalid_argument("[viz] unknown colormap");
}

// matplotlib's _create_lookup_table(N=256, gamma=1) on from_list data: node k sits at
// x_k = k/(n-1) * 255; entry i at 255 * i/255 interpolates linearly between the nodes around it.
using Lut = std::array<std::array<double, 3>, kN>;  // float64, as matplotlib's _lut

Lut build_lut(Colormap map) {
  const auto& a = anchors(map);
  const int n = static_cast<int>(a.size());
  std::vector<double> x(n);
  const double step = 1.0 / (n - 1);
  for (int k = 0; k < n; ++k) x[k] = (k == n - 1 ? 1.0 : k * step) * (kN - 1);
  const double istep = 1.0 / (kN - 1);
  Lut lut{};
  for (int i = 0; i < kN; ++i) {
    std::array<double, 3> v{};
    if (i == 0 || i == kN - 1) {
      const Anchor& e = i == 0 ? a.front() : a.back();
      for (int c = 0; c < 3; ++c) v[c] = e[c];
    } else {
      const double xi = (kN - 1) * (i * istep);
      // searchsorted(side='left'): first node with x >= xi.
      const int j = static_cast<int>(std::lower_bound(x.begin(), x.end(), xi) - x.begin());
      const double d = (xi - x[j - 1]) / (x[j] - x[j - 1]);
      for (int c = 0; c < 3; ++c) {
        const double y0 = a[j][c], y1 = a[j - 1][c];
        v[c] = std::clamp(d * (y0 - y1) + y1, 0.0, 1.0);
      }
    }
    lut[i] = v;
  }
  return lut;
}

const Lut& lut(Colormap map) {
  static const std::array<Lut, 5> luts = {build_lut(Colormap::RdWhGn),
                                          build_lut(Colormap::Blues),
                                          build_lut(Colormap::Greens),
                                          build_lut(Colormap::Reds),
                                          build_lut(Colormap::Gray)};
  return luts.at(static_cast<std::size_t>(map));
}

// Colormap.__call__ on a float: x *= N; x < 0 -> under (entry 0); x == N -> N - 1; int(x);
// above N - 1 -> over (entry N - 1). NaN would be "bad" (transparent): we map it to entry 0.
int lut_index(float value01) {
  if (std::isnan(value01)) return 0;
  float x = value01 * static_cast<float>(kN);
  if (x < 0.f) return 0;
  if (x >= static_cast<float>(kN)) return kN - 1;
  return std::min(static_cast<int>(x), kN - 1);
}

}  // namespace

Rgb lut_entry(Colormap map, int index) {
  if (index < 0 || index >= kN) throw std::out_of_range("[viz] lut index out of range");
  const auto& e = lut(map)[static_cast<std::size_t>(index)];
  return {static_cast<float>(e[0]), static_cast<float>(e[1]), static_cast<float>(e[2])};
}

Rgb color(Colormap map, float value01) { return lut_entry(map, lut_index(value01)); }

Rgb8 color_u8(Colormap map, float value01) {
  const auto& e = lut(map)[static_cast<std::size_t>(lut_index(value01))];
  // matplotlib: (lut * 255).astype(np.uint8), i.e. truncation of the float64 product.
  auto byte = [](double v) { return static_cast<std::uint8_t>(std::clamp(v * 255.0, 0.0, 255.0)); };
  return {byte(e[0]), byte(e[1]), byte(e[2])};
}

Colormap default_colormap(Sign sign) {
  switch (sign) {
    case Sign::All:
      return Colormap::RdWhGn;
    case Sign::Positive:
      return Colormap::Greens;
    case Sign::Negative:
      return Colormap::Reds;
    case Sign::AbsoluteValue:
      return Colormap::Blues;
  }
  return Colormap::Blues;
}

float colormap_vmin(Sign sign) { return sign == Sign::All ? -1.f : 0.f; }

Colormap parse_colormap(std::string_view name) {
  if (name == "RdWhGn") return Colormap::RdWhGn;
  if (name == "Blues") return Colormap::Blues;
  if (name == "Greens") return Colormap::Greens;
  if (name == "Reds") return Colormap::Reds;
  if (name == "gray") return Colormap::Gray;
  throw std::invalid_argument("[viz] unknown colormap '" + std::string(name) +
                              "' (RdWhGn, Blues, Greens, Reds, gray)");
}

std::string_view to_string(Colormap map) {
  switch (map) {
    case Colormap::RdWhGn:
      return "RdWhGn";
    case Colormap::Blues:
      return "Blues";
    case Colormap::Greens:
      return "Greens";
    case Colormap::Reds:
      return "Reds";
    case Colormap::Gray:
      return "gray";
  }
  return "?";
}

}  // namespace gradlens::viz
