// Upsampling of layer attribution maps to the input's size, as Captum's
// LayerAttribution.interpolate (F.interpolate) does it: nearest (Captum's default) takes
// src = min(floor(dst * in / out), in - 1); bilinear (align_corners=False) samples
// src = max((dst + 0.5) * in / out - 0.5, 0) between floor(src) and the next pixel (clamped).
#pragma once

#include <cstdint>
#include <string>

#include "gradlens/autograd/tensor.h"
#include "gradlens/export.h"

namespace gradlens::attr {

enum class Interpolation { Nearest, Bilinear };

/// "nearest" or "bilinear" (Captum's interpolate_mode names).
GRADLENS_API Interpolation parse_interpolation(const std::string& name);
GRADLENS_API const char* interpolation_name(Interpolation mode);

/// maps [N, C, h, w] -> [N, C, height, width] on the maps' device. Indices and weights are
/// float32 as in PyTorch 1.13 (scale = float(in) / out). The maps are small, so this runs on the
/// host; no gradient is recorded.
GRADLENS_API Tensor interpolate(const Tensor& maps,
                                std::int64_t height,
                                std::int64_t width,
                                Interpolation mode = Interpolation::Nearest);

}  // namespace gradlens::attr
