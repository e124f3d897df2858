// Random draws of the sampling methods (NoiseTunnel, GradientShap). They come from the
// counter-based generator (kernels/philox.h), one stream per image keyed by the image's index in
// its data set, so an image's draws do not depend on the batch it is in, the chunking, the device
// or the threads; or they are handed in whole (tests feed Captum's saved draws to reproduce it
// exactly).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "gradlens/autograd/shape.h"
#include "gradlens/autograd/tensor.h"
#include "gradlens/export.h"

namespace gradlens::attr {

struct GRADLENS_API RandomDraws {
  Tensor noise;  // [N * samples, ...], row i * samples + s; undefined = draw
  std::vector<std::int64_t> baseline_index;  // per row: which baseline of the distribution
  std::vector<float> alphas;                 // per row: GradientShap's interpolation point
};

/// The random stream of each of `n` input rows: `image_ids` when given (one per row), else 0 ..
/// n-1. `op` names the method in errors.
GRADLENS_API std::vector<std::int64_t> image_streams(std::span<const std::int64_t> image_ids,
                                                     std::int64_t n,
                                                     std::string_view op);

/// Which of `k` baselines each sample row i * samples + s uses: draws->baseline_index when handed
/// in (checked: one per row, each in [0, k)), else floor(k * u), u = uniform draw s of stream
/// (seed, streams[i], kBaselineIndex).
GRADLENS_API std::vector<std::int64_t> baseline_rows(const RandomDraws* draws,
                                                     std::span<const std::int64_t> streams,
                                                     std::int64_t samples,
                                                     std::int64_t k,
                                                     std::uint64_t seed,
                                                     std::string_view op);

/// GradientShap's interpolation point of each sample row i * samples + s: uniform draw s of stream
/// (seed, streams[i], kAlpha), drawn in double and used as float32 (Captum's numpy -> float32).
GRADLENS_API std::vector<float> alpha_rows(std::span<const std::int64_t> streams,
                                           std::int64_t samples,
                                           std::uint64_t seed);

/// draws->noise when handed in (checked to be `shape`: row i * samples + s), else nullptr.
GRADLENS_API const Tensor* given_noise(const RandomDraws* draws,
                                       const Shape& shape,
                                       std::string_view op);

}  // namespace gradlens::attr
