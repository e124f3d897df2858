// Random draws of the sampling methods (NoiseTunnel, GradientShap). They come from an explicit
// seeded generator, or are handed in whole (tests feed Captum's saved draws to reproduce it
// exactly).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "autograd/shape.h"
#include "autograd/tensor.h"
#include "nn/init.h"

namespace gradlens::attr {

struct RandomDraws {
  Tensor noise;  // [N * samples, ...], row i * samples + s; undefined = draw
  std::vector<std::int64_t> baseline_index;  // per row: which baseline of the distribution
  std::vector<float> alphas;                 // per row: GradientShap's interpolation point
};

/// Which baseline each of `rows` sample rows uses: draws->baseline_index when handed in (checked:
/// one per row, each in [0, k)), else uniform draws from `gen`. `op` names the method in errors.
std::vector<std::int64_t> baseline_rows(const RandomDraws* draws,
                                        std::int64_t rows,
                                        std::int64_t k,
                                        nn::Generator& gen,
                                        std::string_view op);

/// draws->noise when handed in (checked to be `shape`: row i * samples + s), else nullptr.
const Tensor* given_noise(const RandomDraws* draws, const Shape& shape, std::string_view op);

}  // namespace gradlens::attr
