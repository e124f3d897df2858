#include "gradlens/nn/init.h"

#include <cmath>

namespace gradlens::nn {

float Generator::uniform(float lo, float hi) {
  return std::uniform_real_distribution<float>(lo, hi)(engine_);
}

float Generator::normal(float mean, float stdev) {
  return mean + stdev * standard_normal_(engine_);
}

Tensor uniform_tensor(const Shape& shape, float bound, Generator& gen) {
  std::vector<float> values(static_cast<std::size_t>(shape_numel(shape)));
  for (float& v : values) v = gen.uniform(-bound, bound);
  return Tensor::from_vector(values, shape);
}

// kaiming_uniform(a = sqrt(5)): gain = sqrt(2 / (1 + a^2)) = sqrt(1/3), bound = gain * sqrt(3 /
// fan_in) = 1 / sqrt(fan_in); PyTorch's bias bound is the same 1 / sqrt(fan_in).
float default_init_bound(std::int64_t fan_in) {
  return fan_in > 0 ? 1.f / std::sqrt(static_cast<float>(fan_in)) : 0.f;
}

}  // namespace gradlens::nn
