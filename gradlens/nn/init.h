// Seeded random numbers and PyTorch's default initialisation: kaiming_uniform(a = sqrt(5)) for
// weights, which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for biases.
#pragma once

#include <cstdint>
#include <random>

#include "gradlens/autograd/tensor.h"
#include "gradlens/export.h"

namespace gradlens::nn {

/// The one random source of the engine: explicit and seeded, never global.
class GRADLENS_API Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
  float uniform(float lo, float hi);
  float normal(float mean, float stdev);
  std::uint64_t next_u64() { return engine_(); }
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
  // Kept across calls: the polar method makes values in pairs, and a fresh distribution per call
  // would throw half of them away.
  std::normal_distribution<float> standard_normal_{0.f, 1.f};
};

/// Tensor of U(-bound, bound) on the CPU.
GRADLENS_API Tensor uniform_tensor(const Shape& shape, float bound, Generator& gen);
/// PyTorch's Conv2d/Linear reset_parameters(): bound = 1 / sqrt(fan_in) for weight and bias.
GRADLENS_API float default_init_bound(std::int64_t fan_in);

}  // namespace gradlens::nn
