// 8-bit RGB/RGBA images and their PNG files (libpng). Writes are atomic: a temp file beside the
// target, then rename; on any failure the temp file is removed and nothing is left behind.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gradlens/data/file.h"
#include "gradlens/export.h"

namespace gradlens::viz {

/// Interleaved 8-bit pixels, row-major: pixels[(y * width + x) * channels + c].
struct GRADLENS_API Image {
  int width = 0, height = 0;
  int channels = 3;  // 3 = RGB, 4 = RGBA
  std::vector<std::uint8_t> pixels;

  static Image blank(int width, int height, int channels, std::uint8_t fill = 255);
  std::uint8_t* at(int x, int y) {
    return pixels.data() + (static_cast<std::size_t>(y) * width + x) * channels;
  }
  const std::uint8_t* at(int x, int y) const {
    return pixels.data() + (static_cast<std::size_t>(y) * width + x) * channels;
  }
};

/// Writes `image` as an 8-bit RGB or RGBA PNG. Throws std::runtime_error naming `path`.
GRADLENS_API void write_png(const std::string& path, const Image& image);
/// The PNG encoded in memory (for data: URIs).
GRADLENS_API std::vector<std::uint8_t> encode_png(const Image& image);
/// Writes bytes or text to a file atomically: data::write_file_atomic (data/file.h), the one
/// writer every file of gradlens goes through.
using data::write_file_atomic;
/// Reads an 8-bit RGB or RGBA PNG (palette/gray/16-bit are converted to 8-bit RGB(A)).
GRADLENS_API Image read_png(const std::string& path);

}  // namespace gradlens::viz
