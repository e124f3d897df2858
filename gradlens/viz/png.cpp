#include "gradlens/viz/png.h"

#include <png.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>

namespace gradlens::viz {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("[png] " + path + ": " + what);
}

void check_image(const Image& image, const std::string& path) {
  if (image.width <= 0 || image.height <= 0) fail(path, "image has no pixels");
  if (image.channels != 3 && image.channels != 4) {
    fail(path, "expected 3 (RGB) or 4 (RGBA) channels, got " + std::to_string(image.channels));
  }
  const std::size_t expected =
      static_cast<std::size_t>(image.width) * image.height * image.channels;
  if (image.pixels.size() != expected) {
    fail(path,
         "pixel buffer holds " + std::to_string(image.pixels.size()) + " bytes, expected " +
             std::to_string(expected));
  }
}

// libpng reports errors through longjmp; the error handler stores the message first.
struct ErrorState {
  char message[256] = "unknown libpng error";
};
void on_error(png_structp png, png_const_charp msg) {
  auto* state = static_cast<ErrorState*>(png_get_error_ptr(png));
  std::snprintf(state->message, sizeof(state->message), "%s", msg);
  png_longjmp(png, 1);
}
void on_warning(png_structp, png_const_charp) {}

// Encoding always goes to memory; write_png then writes the bytes in one atomic step.
struct Sink {
  std::vector<std::uint8_t>* buffer = nullptr;
};
void write_data(png_structp png, png_bytep data, png_size_t length) {
  auto* sink = static_cast<Sink*>(png_get_io_ptr(png));
  sink->buffer->insert(sink->buffer->end(), data, data + length);
}
void flush_data(png_structp) {}

// Encodes into `sink`; returns "" on success or the libpng message. longjmp only returns to the
// setjmp below (within this frame), so `rows` is destroyed normally on every path.
std::string encode(const Image& image, Sink& sink) {
  ErrorState state;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, on_error, on_warning);
  if (!png) return "png_create_write_struct failed";
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    return "png_create_info_struct failed";
  }
  std::vector<png_bytep> rows(static_cast<std::size_t>(image.height));
  for (int y = 0; y < image.height; ++y) {
    rows[static_cast<std::size_t>(y)] = const_cast<png_bytep>(image.at(0, y));
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return state.message;
  }
  png_set_write_fn(png, &sink, write_data, flush_data);
  png_set_IHDR(png,
               info,
               static_cast<png_uint_32>(image.width),
               static_cast<png_uint_32>(image.height),
               8,
               image.channels == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return "";
}

}  // namespace

Image Image::blank(int width, int height, int channels, std::uint8_t fill) {
  Image image;
  image.width = width;
  image.height = height;
  image.channels = channels;
  image.pixels.assign(static_cast<std::size_t>(width) * height * channels, fill);
  if (channels == 4) {
    for (std::size_t i = 3; i < image.pixels.size(); i += 4) image.pixels[i] = 255;
  }
  return image;
}

std::vector<std::uint8_t> encode_png(const Image& image) {
  check_image(image, "<memory>");
  std::vector<std::uint8_t> buffer;
  Sink sink{&buffer};
  const std::string error = encode(image, sink);
  if (!error.empty()) fail("<memory>", error);
  return buffer;
}

void write_png(const std::string& path, const Image& image) {
  check_image(image, path);
  std::vector<std::uint8_t> buffer;
  Sink sink{&buffer};
  const std::string error = encode(image, sink);
  if (!error.empty()) fail(path, error);
  write_file_atomic(path, buffer);
}

Image read_png(const std::string& path) {
  png_image desc;
  std::memset(&desc, 0, sizeof(desc));
  desc.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&desc, path.c_str())) fail(path, desc.message);
  const bool alpha = (desc.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  desc.format = alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
  Image image;
  image.width = static_cast<int>(desc.width);
  image.height = static_cast<int>(desc.height);
  image.channels = alpha ? 4 : 3;
  image.pixels.resize(PNG_IMAGE_SIZE(desc));
  if (!png_image_finish_read(&desc, nullptr, image.pixels.data(), 0, nullptr)) {
    const std::string message = desc.message;
    png_image_free(&desc);
    fail(path, message);
  }
  return image;
}

}  // namespace gradlens::viz
