// The PNG reader (libpng's simplified API) on arbitrary bytes: an image whose pixel buffer matches
// its size, or one std::runtime_error.
#include <stdexcept>

#include "fuzz/fuzz_input.h"
#include "gradlens/viz/png.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = gradlens::fuzz::input_file(data, size, "picture.png");
  try {
    const gradlens::viz::Image image = gradlens::viz::read_png(path);
    const std::size_t expected = static_cast<std::size_t>(image.width) *
                                 static_cast<std::size_t>(image.height) *
                                 static_cast<std::size_t>(image.channels);
    if (image.pixels.size() != expected) __builtin_trap();
  } catch (const std::runtime_error&) {
  }
  return 0;
}
