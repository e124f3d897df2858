#include "gradlens/viz/figure.h"

#include <algorithm>
#include <stdexcept>

#include "gradlens/viz/font.h"

namespace gradlens::viz {

Image titled_row(std::span<const Image> panels,
                 std::span<const std::string> titles,
                 std::string_view header,
                 int font_scale) {
  if (panels.empty()) throw std::invalid_argument("[viz] figure: no panels");
  if (!titles.empty() && titles.size() != panels.size()) {
    throw std::invalid_argument("[viz] figure: " + std::to_string(titles.size()) + " titles for " +
                                std::to_string(panels.size()) + " panels");
  }
  if (font_scale < 1 || font_scale > 16)
    throw std::invalid_argument("[viz] figure: font scale must be in 1..16");
  const int line = kGlyphLineHeight * font_scale;
  const int margin = 4 * font_scale, gap = 6 * font_scale;
  const int header_h = header.empty() ? 0 : line + margin;
  const int title_h = titles.empty() ? 0 : line + font_scale;
  int width = margin, panel_h = 0;
  for (std::size_t i = 0; i < panels.size(); ++i) {
    const int title_w = titles.empty() ? 0 : text_width(titles[i], font_scale);
    width += std::max(panels[i].width, title_w) + (i + 1 < panels.size() ? gap : margin);
    panel_h = std::max(panel_h, panels[i].height);
  }
  width = std::max(width, text_width(header, font_scale) + 2 * margin);
  Image out = Image::blank(width, margin + header_h + title_h + panel_h + margin, 3);
  const Rgb8 ink{20, 20, 20};
  if (!header.empty()) draw_text(out, margin, margin, header, ink, font_scale);
  int x = margin;
  for (std::size_t i = 0; i < panels.size(); ++i) {
    const Image& p = panels[i];
    const int title_w = titles.empty() ? 0 : text_width(titles[i], font_scale);
    const int cell = std::max(p.width, title_w);
    const int top = margin + header_h;
    if (!titles.empty()) draw_text(out, x + (cell - title_w) / 2, top, titles[i], ink, font_scale);
    const int px0 = x + (cell - p.width) / 2, py0 = top + title_h;
    for (int y = 0; y < p.height; ++y) {
      for (int px = 0; px < p.width; ++px) {
        const std::uint8_t* s = p.at(px, y);
        std::uint8_t* d = out.at(px0 + px, py0 + y);
        const int alpha = p.channels == 4 ? s[3] : 255;
        for (int c = 0; c < 3; ++c) {
          d[c] = static_cast<std::uint8_t>((s[c] * alpha + 255 * (255 - alpha) + 127) / 255);
        }
      }
    }
    x += cell + gap;
  }
  return out;
}

}  // namespace gradlens::viz
