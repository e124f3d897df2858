// What a self-contained HTML page needs: images as data: URIs (PNG, base64) and escaped text.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gradlens/export.h"
#include "gradlens/viz/png.h"

namespace gradlens::viz {

/// RFC 4648 base64 with '=' padding.
GRADLENS_API std::string base64_encode(std::span<const std::uint8_t> bytes);
/// The inverse; throws std::invalid_argument on a character outside the alphabet or a bad length.
GRADLENS_API std::vector<std::uint8_t> base64_decode(std::string_view text);
/// "data:image/png;base64,..." of `image` encoded as PNG.
GRADLENS_API std::string png_data_uri(const Image& image);
/// `text` with &, <, >, " and ' escaped for HTML text and attribute values.
GRADLENS_API std::string html_escape(std::string_view text);

}  // namespace gradlens::viz
