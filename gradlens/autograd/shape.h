// Shape: sizes of a row-major tensor, outermost first (NCHW).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "gradlens/export.h"

namespace gradlens {

using Shape = std::vector<std::int64_t>;

/// Product of the sizes (1 for a scalar, shape {}).
GRADLENS_API std::int64_t shape_numel(const Shape& shape);
/// "[4, 3, 32, 32]", as every error message prints shapes.
GRADLENS_API std::string shape_str(const Shape& shape);

}  // namespace gradlens
