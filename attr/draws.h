// Random draws of the sampling methods (NoiseTunnel, GradientShap). They come from an explicit
// seeded generator, or are handed in whole (tests feed Captum's saved draws to reproduce it
// exactly).
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/tensor.h"

namespace gradlens::attr {

struct RandomDraws {
  Tensor noise;  // [N * samples, ...], row i * samples + s; undefined = draw
  std::vector<std::int64_t> baseline_index;  // per row: which baseline of the distribution
  std::vector<float> alphas;                 // per row: GradientShap's interpolation point
};

}  // namespace gradlens::attr
