// ToTensor + Normalize through a 256-entry table per channel, filled with the exact float32
// expression, so every value is bit-identical to torchvision's.
#include "gradlens/data/transforms.h"

#include "gradlens/autograd/error.h"

namespace gradlens::data {

void normalize_into(const CifarSplit& split,
                    std::span<const std::int64_t> indices,
                    const Normalize& normalize,
                    float* out) {
  std::array<std::array<float, 256>, 3> table;
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) table[c][v] = normalize(static_cast<std::uint8_t>(v), c);
  }
  constexpr std::int64_t kPlane = kCifarHeight * kCifarWidth;
  for (std::size_t k = 0; k < indices.size(); ++k) {
    const std::int64_t i = indices[k];
    GRADLENS_CHECK(i >= 0 && i < split.size(),
                   "[to_normalized_tensor] index ",
                   i,
                   " out of range for a split of ",
                   split.size(),
                   " images");
    const std::uint8_t* src = split.images.data() + i * kCifarImageBytes;
    float* dst = out + static_cast<std::int64_t>(k) * kCifarImageBytes;
    for (int c = 0; c < 3; ++c) {
      const std::array<float, 256>& t = table[c];
      for (std::int64_t p = 0; p < kPlane; ++p) dst[c * kPlane + p] = t[src[c * kPlane + p]];
    }
  }
}

Tensor to_normalized_tensor(const CifarSplit& split,
                            std::span<const std::int64_t> indices,
                            const Normalize& normalize) {
  Tensor out = Tensor::empty(
      {static_cast<std::int64_t>(indices.size()), kCifarChannels, kCifarHeight, kCifarWidth});
  normalize_into(split, indices, normalize, out.data());
  return out;
}

}  // namespace gradlens::data
