// ToTensor + Normalize as torchvision computes them in float32: x = (float(u8) / 255.f - mean[c]) /
// std[c]. The tutorial's Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)) maps 0..255 onto [-1, 1].
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "gradlens/autograd/tensor.h"
#include "gradlens/data/cifar10.h"
#include "gradlens/export.h"

namespace gradlens::data {

/// Per-channel normalization of ToTensor's [0, 1] values.
struct GRADLENS_API Normalize {
  std::array<float, 3> mean{0.5f, 0.5f, 0.5f};
  std::array<float, 3> std{0.5f, 0.5f, 0.5f};

  /// Bit-identical to torchvision: ToTensor divides by 255 in float32, Normalize subtracts then
  /// divides. NOTE: not (v * (1 / 255.f)), nor a fused multiply-add: those round differently.
  float operator()(std::uint8_t value, int channel) const {
    return (static_cast<float>(value) / 255.f - mean[channel]) / std[channel];
  }
};

/// The tutorial's transform: Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)).
inline constexpr Normalize kTutorialNormalize{};

/// Images `indices` of `split`, normalized: a [k, 3, 32, 32] CPU tensor, k = indices.size().
/// Throws std::invalid_argument when an index is out of range.
GRADLENS_API Tensor to_normalized_tensor(const CifarSplit& split,
                                         std::span<const std::int64_t> indices,
                                         const Normalize& normalize = kTutorialNormalize);

/// The same into caller memory: out holds indices.size() * 3072 floats.
GRADLENS_API void normalize_into(const CifarSplit& split,
                                 std::span<const std::int64_t> indices,
                                 const Normalize& normalize,
                                 float* out);

}  // namespace gradlens::data
