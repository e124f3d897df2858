// The inputs every benchmark program shares, so the CPU and GPU twins time the same work: seeded
// images in [-1, 1], the 32 training batches with scrambled labels, and the tutorial's Net.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gradlens/autograd/shape.h"
#include "gradlens/autograd/tensor.h"
#include "gradlens/nn/lenet.h"
#include "gradlens/nn/safetensors.h"

namespace gradlens::bench {

/// Uniform [-1, 1) values of `shape` (default: n CIFAR images [n, 3, 32, 32]) on `device`.
inline Tensor random_images(std::int64_t n,
                            std::uint64_t seed,
                            Device device = kCPU,
                            Shape shape = {}) {
  if (shape.empty()) shape = {n, 3, 32, 32};
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(static_cast<std::size_t>(shape_numel(shape)));
  for (float& x : v) x = dist(gen);
  return Tensor::from_vector(v, shape, device);
}

/// The training steps' data: 32 batches with scrambled labels, cycled. NOTE: thousands of steps on
/// one fixed batch drive the loss and every gradient towards denormal floats, which are slow on
/// both sides and no real workload.
struct TrainingBatches {
  static constexpr int kCount = 32;
  std::vector<Tensor> images;
  std::vector<std::vector<std::int64_t>> labels;
};

inline TrainingBatches training_batches(std::int64_t batch, Device device = kCPU) {
  TrainingBatches out;
  for (int k = 0; k < TrainingBatches::kCount; ++k) {
    out.images.push_back(random_images(batch, 100 + k, device));
    std::vector<std::int64_t> y(static_cast<std::size_t>(batch));
    for (std::int64_t i = 0; i < batch; ++i)
      y[static_cast<std::size_t>(i)] = ((i * 7) % 10 * 3 + k) % 10;
    out.labels.push_back(std::move(y));
  }
  return out;
}

/// The tutorial's pretrained weights when the shared reference has them (the ReLU patterns then
/// look like real ones), else a seeded Net: the timings barely depend on the weights.
inline nn::Net pretrained_net(Device device = kCPU) {
  nn::Net net(0);
  const char* shared = std::getenv("GRADLENS_SHARED_DIR");  // a bundle's data (gpu_bundle.sh)
  const std::string path =
      std::string(shared != nullptr && *shared ? shared : GRADLENS_SHARED_DIR) +
      "/reference/cifar_net.safetensors";
  if (std::filesystem::exists(path)) {
    net.load_state_dict(nn::SafetensorsFile::load(path).float_tensors());
  }
  net.to(device);
  return net;
}

}  // namespace gradlens::bench
