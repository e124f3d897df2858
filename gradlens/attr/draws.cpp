#include "gradlens/attr/draws.h"

#include <algorithm>

#include "gradlens/autograd/error.h"
#include "gradlens/kernels/philox.h"

namespace gradlens::attr {

std::vector<std::int64_t> image_streams(std::span<const std::int64_t> image_ids,
                                        std::int64_t n,
                                        std::string_view op) {
  if (image_ids.empty()) {
    std::vector<std::int64_t> out(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = i;
    return out;
  }
  GRADLENS_CHECK(static_cast<std::int64_t>(image_ids.size()) == n,
                 "[",
                 op,
                 "] image_ids has ",
                 image_ids.size(),
                 " entries for ",
                 n,
                 " input rows");
  return {image_ids.begin(), image_ids.end()};
}

std::vector<std::int64_t> baseline_rows(const RandomDraws* draws,
                                        std::span<const std::int64_t> streams,
                                        std::int64_t samples,
                                        std::int64_t k,
                                        std::uint64_t seed,
                                        std::string_view op) {
  const std::int64_t rows = static_cast<std::int64_t>(streams.size()) * samples;
  if (draws == nullptr || draws->baseline_index.empty()) {
    std::vector<std::int64_t> out;
    out.reserve(static_cast<std::size_t>(rows));
    for (const std::int64_t stream : streams) {
      for (std::int64_t s = 0; s < samples; ++s) {
        const double u = philox::uniform(seed,
                                         static_cast<std::uint64_t>(stream),
                                         philox::kBaselineIndex,
                                         static_cast<std::uint64_t>(s));
        out.push_back(std::min(k - 1, static_cast<std::int64_t>(u * static_cast<double>(k))));
      }
    }
    return out;
  }
  GRADLENS_CHECK(static_cast<std::int64_t>(draws->baseline_index.size()) == rows,
                 "[",
                 op,
                 "] draws.baseline_index has ",
                 draws->baseline_index.size(),
                 " entries, expected one per sample row: ",
                 rows);
  for (const std::int64_t b : draws->baseline_index) {
    GRADLENS_CHECK(b >= 0 && b < k,
                   "[",
                   op,
                   "] draws.baseline_index ",
                   b,
                   " is outside the ",
                   k,
                   " baselines");
  }
  return draws->baseline_index;
}

std::vector<float> alpha_rows(std::span<const std::int64_t> streams,
                              std::int64_t samples,
                              std::uint64_t seed) {
  std::vector<float> out;
  out.reserve(streams.size() * static_cast<std::size_t>(samples));
  for (const std::int64_t stream : streams) {
    for (std::int64_t s = 0; s < samples; ++s) {
      out.push_back(static_cast<float>(philox::uniform(seed,
                                                       static_cast<std::uint64_t>(stream),
                                                       philox::kAlpha,
                                                       static_cast<std::uint64_t>(s))));
    }
  }
  return out;
}

const Tensor* given_noise(const RandomDraws* draws, const Shape& shape, std::string_view op) {
  if (draws == nullptr || !draws->noise.defined()) return nullptr;
  GRADLENS_CHECK(draws->noise.shape() == shape,
                 "[",
                 op,
                 "] draws.noise is ",
                 shape_str(draws->noise.shape()),
                 ", expected ",
                 shape_str(shape),
                 " (row i * samples + s)");
  return &draws->noise;
}

}  // namespace gradlens::attr
