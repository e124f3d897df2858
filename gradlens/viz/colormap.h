// The matplotlib colormaps Captum's visualizer uses, as matplotlib evaluates them: a 256-entry
// lookup table built by linear interpolation between the anchors (LinearSegmentedColormap, N=256),
// indexed by int(value * 256) with 1.0 mapped to the last entry and out-of-range values clamped.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "gradlens/export.h"
#include "gradlens/viz/visualize.h"

namespace gradlens::viz {

enum class Colormap {
  RdWhGn,  // LinearSegmentedColormap.from_list("RdWhGn", ["red", "white", "green"]); green=#008000
  Blues,   // matplotlib's 9-point sequential "Blues" (ColorBrewer)
  Greens,
  Reds,
  Gray,  // black to white
};

/// Channels in [0, 1], as matplotlib's float lookup table holds them.
struct GRADLENS_API Rgb {
  float r = 0, g = 0, b = 0;
};
using Rgb8 = std::array<std::uint8_t, 3>;

/// The colour at `value01` (0..1 along the map), with matplotlib's index rounding.
GRADLENS_API Rgb color(Colormap map, float value01);
/// The same as bytes, as matplotlib renders it (to_rgba(bytes=True): lut * 255 truncated).
GRADLENS_API Rgb8 color_u8(Colormap map, float value01);
/// lut entry i in 0..255.
GRADLENS_API Rgb lut_entry(Colormap map, int index);

/// Captum's default map for a sign: All -> RdWhGn, Positive -> Greens, Negative -> Reds,
/// AbsoluteValue -> Blues.
GRADLENS_API Colormap default_colormap(Sign sign);
/// Captum's vmin for a sign (-1 for All, else 0); vmax is always 1.
GRADLENS_API float colormap_vmin(Sign sign);

/// "RdWhGn", "Blues", "Greens", "Reds", "gray"; throws std::invalid_argument.
GRADLENS_API Colormap parse_colormap(std::string_view name);
GRADLENS_API std::string_view to_string(Colormap map);

}  // namespace gradlens::viz
