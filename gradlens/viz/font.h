// A tiny built-in 5x7 bitmap font (lowercase, digits, some punctuation) so standalone PNGs can
// carry titles and labels without a font library. Upper case is drawn with the lowercase glyphs.
#pragma once

#include <string_view>

#include "gradlens/export.h"
#include "gradlens/viz/colormap.h"
#include "gradlens/viz/png.h"

namespace gradlens::viz {

/// Pixels one glyph cell takes at `scale`: 6 wide (5 + 1 gap), 9 high (7 + descender + gap).
constexpr int kGlyphAdvance = 6;
constexpr int kGlyphLineHeight = 9;

/// Width of `text` drawn at `scale` (no trailing gap); 0 for empty text.
GRADLENS_API int text_width(std::string_view text, int scale);
/// Draws `text` with its top-left corner at (x, y); pixels outside the image are clipped.
/// Characters without a glyph are drawn as '?'.
GRADLENS_API void draw_text(
    Image& image, int x, int y, std::string_view text, Rgb8 color, int scale = 1);

}  // namespace gradlens::viz
