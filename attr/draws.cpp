#include "attr/draws.h"

#include "attr/noise_tunnel.h"
#include "autograd/error.h"

namespace gradlens::attr {

std::vector<std::int64_t> baseline_rows(const RandomDraws* draws,
                                        std::int64_t rows,
                                        std::int64_t k,
                                        nn::Generator& gen,
                                        std::string_view op) {
  if (draws == nullptr || draws->baseline_index.empty()) return random_indices(rows, k, gen);
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
