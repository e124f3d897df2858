// The arithmetic of conv2d and linear on CUDA: float32 (the default, what the reference was made
// with) or TF32 tensor cores (inputs rounded to 10 mantissa bits, products summed in float32), the
// trade PyTorch makes with torch.backends.cuda.matmul.allow_tf32. The CPU always uses float32.
#pragma once

#include <string_view>

#include "gradlens/export.h"

namespace gradlens {

enum class MatmulPrecision { Float32, TF32 };

/// Process-wide, read by the CUDA kernels at each conv2d and linear call.
GRADLENS_API void set_matmul_precision(MatmulPrecision precision);
GRADLENS_API MatmulPrecision matmul_precision();
/// "float32" or "tf32"; anything else is an error naming the accepted values.
GRADLENS_API MatmulPrecision parse_matmul_precision(std::string_view text);

}  // namespace gradlens
