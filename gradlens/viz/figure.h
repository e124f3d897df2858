// Several panels as one picture, as visualize_image_attr_multiple lays them out (1 x n, tight):
// a header line, then each panel under its title, on white, drawn with the built-in font.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "gradlens/export.h"
#include "gradlens/viz/png.h"

namespace gradlens::viz {

/// Panels left to right (top-aligned, RGB or RGBA composited over white), `titles` (one per panel,
/// or none) above them and `header` (may be empty) on top. Throws std::invalid_argument when the
/// counts differ or there is no panel.
GRADLENS_API Image titled_row(std::span<const Image> panels,
                              std::span<const std::string> titles,
                              std::string_view header,
                              int font_scale = 2);

}  // namespace gradlens::viz
