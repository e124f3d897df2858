// make_grid as torchvision/utils.py computes it: one canvas full of pad_value, each image copied to
// (row * (H + padding) + padding, col * (W + padding) + padding).
#include "gradlens/viz/grid.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "gradlens/viz/font.h"

namespace gradlens::viz {
namespace {

[[noreturn]] void invalid(const std::string& what) {
  throw std::invalid_argument("[viz] grid: " + what);
}

}  // namespace

GridGeometry grid_geometry(int count, int height, int width, const GridOptions& options) {
  if (count < 1 || height < 1 || width < 1)
    invalid("needs at least one image of positive size, got " + std::to_string(count) +
            " images of " + std::to_string(height) + "x" + std::to_string(width));
  if (options.nrow < 1) invalid("nrow must be >= 1, got " + std::to_string(options.nrow));
  if (options.padding < 0) invalid("padding must be >= 0, got " + std::to_string(options.padding));
  GridGeometry g;
  g.columns = std::min(options.nrow, count);
  g.rows = (count + g.columns - 1) / g.columns;
  g.cell_height = height + options.padding;
  g.cell_width = width + options.padding;
  g.height = g.cell_height * g.rows + options.padding;
  g.width = g.cell_width * g.columns + options.padding;
  g.padding = options.padding;
  return g;
}

Tensor make_grid(const Tensor& images, const GridOptions& options) {
  const Shape& s = images.shape();
  if (s.size() != 4 || s[0] < 1 || (s[1] != 1 && s[1] != 3) || s[2] < 1 || s[3] < 1)
    invalid("expected images [N, 1 or 3, H, W], got " + shape_str(s));
  const std::int64_t n = s[0], c_in = s[1], h = s[2], w = s[3];
  const std::vector<float> src = images.to(kCPU).to_vector();
  const std::int64_t plane = h * w;
  // torchvision repeats a single channel to RGB before anything else.
  auto value = [&](std::int64_t k, std::int64_t c, std::int64_t p) {
    return src[static_cast<std::size_t>((k * c_in + (c_in == 1 ? 0 : c)) * plane + p)];
  };
  if (n == 1) {
    std::vector<float> out(static_cast<std::size_t>(3 * plane));
    for (std::int64_t c = 0; c < 3; ++c)
      for (std::int64_t p = 0; p < plane; ++p)
        out[static_cast<std::size_t>(c * plane + p)] = value(0, c, p);
    return Tensor::from_vector(out, {3, h, w});
  }
  const GridGeometry g =
      grid_geometry(static_cast<int>(n), static_cast<int>(h), static_cast<int>(w), options);
  const std::int64_t gh = g.height, gw = g.width;
  std::vector<float> out(static_cast<std::size_t>(3 * gh * gw), options.pad_value);
  for (int k = 0; k < n; ++k) {
    for (std::int64_t c = 0; c < 3; ++c) {
      for (std::int64_t y = 0; y < h; ++y) {
        for (std::int64_t x = 0; x < w; ++x) {
          out[static_cast<std::size_t>((c * gh + g.y(k) + y) * gw + g.x(k) + x)] =
              value(k, c, y * w + x);
        }
      }
    }
  }
  return Tensor::from_vector(out, {3, gh, gw});
}

Image upscale(const Image& src, int scale) {
  if (scale < 1 || scale > 256) invalid("scale " + std::to_string(scale) + " is outside 1..256");
  if (scale == 1) return src;
  Image dst = Image::blank(src.width * scale, src.height * scale, src.channels);
  for (int y = 0; y < dst.height; ++y) {
    for (int x = 0; x < dst.width; ++x) {
      std::copy_n(src.at(x / scale, y / scale), src.channels, dst.at(x, y));
    }
  }
  return dst;
}

Image image_from_chw01(const Tensor& chw, int scale) {
  const Shape& s = chw.shape();
  if (s.size() != 3 || s[0] != 3 || s[1] < 1 || s[2] < 1)
    invalid("expected an RGB image [3, H, W], got " + shape_str(s));
  const int h = static_cast<int>(s[1]), w = static_cast<int>(s[2]);
  const std::vector<float> v = chw.to(kCPU).to_vector();
  Image image = Image::blank(w, h, 3);
  const std::size_t plane = static_cast<std::size_t>(h) * w;
  for (std::size_t p = 0; p < plane; ++p) {
    for (std::size_t c = 0; c < 3; ++c) {
      const float x = v[c * plane + p];
      if (std::isnan(x))
        invalid("NaN in image " + shape_str(s) + " at element " + std::to_string(c * plane + p));
      // As Captum's _prepare_image: the float32 product, truncated, clipped.
      const double t = std::trunc(static_cast<double>(x * 255.0f));
      image.pixels[p * 3 + c] = static_cast<std::uint8_t>(std::clamp(t, 0.0, 255.0));
    }
  }
  return upscale(image, scale);
}

Image labelled_grid(const Tensor& normalized_images,
                    const std::vector<std::vector<std::string>>& captions,
                    int scale,
                    const GridOptions& options) {
  const Shape& s = normalized_images.shape();
  if (s.size() != 4) invalid("expected images [N, C, H, W], got " + shape_str(s));
  const int n = static_cast<int>(s[0]);
  if (static_cast<int>(captions.size()) != n)
    invalid(std::to_string(captions.size()) + " captions for " + std::to_string(n) + " images");
  // The tutorial's imshow: img / 2 + 0.5 on the whole grid, padding included.
  const std::vector<float> grid = make_grid(normalized_images, options).to_vector();
  std::vector<float> shown(grid.size());
  std::transform(grid.begin(), grid.end(), shown.begin(), [](float v) { return v / 2 + 0.5f; });
  const GridGeometry g = grid_geometry(n, static_cast<int>(s[2]), static_cast<int>(s[3]), options);
  const bool single = n == 1;  // make_grid returns a lone image without padding
  const int gh = single ? static_cast<int>(s[2]) : g.height;
  const int gw = single ? static_cast<int>(s[3]) : g.width;
  const Image picture = image_from_chw01(Tensor::from_vector(shown, {3, gh, gw}), scale);

  std::size_t lines = 0;
  for (const auto& c : captions) lines = std::max(lines, c.size());
  // The larger font where every caption fits its image's width, else the small one.
  int font = 2;
  for (const auto& c : captions)
    for (const std::string& text : c)
      if (text_width(text, 2) > static_cast<int>(s[3]) * scale) font = 1;
  const int band = lines ? static_cast<int>(lines) * kGlyphLineHeight * font + 2 * font : 0;
  const int strip = (single ? gh : g.cell_height) * scale;  // one grid row, with its top padding
  const int rows = single ? 1 : g.rows;
  Image out = Image::blank(picture.width, picture.height + rows * band, 3);
  for (int r = 0; r < rows; ++r) {
    const int src_top = r * strip;
    const int src_end = r == rows - 1 ? picture.height : src_top + strip;
    const int dst_top = src_top + r * band;
    for (int y = src_top; y < src_end; ++y) {
      std::copy_n(picture.at(0, y),
                  static_cast<std::size_t>(picture.width) * 3,
                  out.at(0, dst_top + (y - src_top)));
    }
    const int band_top = dst_top + (src_end - src_top);
    for (int k = r * g.columns; k < std::min(n, (r + 1) * g.columns); ++k) {
      const int centre = single ? picture.width / 2 : (g.x(k) + static_cast<int>(s[3]) / 2) * scale;
      for (std::size_t line = 0; line < captions[static_cast<std::size_t>(k)].size(); ++line) {
        const std::string& text = captions[static_cast<std::size_t>(k)][line];
        draw_text(out,
                  centre - text_width(text, font) / 2,
                  band_top + font + static_cast<int>(line) * kGlyphLineHeight * font,
                  text,
                  Rgb8{20, 20, 20},
                  font);
      }
    }
  }
  return out;
}

}  // namespace gradlens::viz
