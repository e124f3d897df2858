// The same attribution on the CPU and, when there is one, the GPU: IntegratedGradients (50 steps)
// of the pretrained Net over the first N test images, timed on each device, with the speed-up and
// the largest difference between the two results.   cpu_vs_gpu MODEL CIFAR_DIR [N]
#include <gradlens/gradlens.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>

using namespace gradlens;

// Images per second of IG over `images` on `device`, and the attributions (on the CPU).
static double images_per_second(nn::Net& net,
                                const Tensor& images,
                                const std::vector<std::int64_t>& labels,
                                Device device,
                                Tensor* result) {
  net.to(device);
  attr::IntegratedGradients ig(net, {.return_convergence_delta = false});
  const Tensor x = images.to(device);
  ig.attribute(slice(x, 0, 1), labels[0]);  // warm-up: allocator, kernels, the planner's probe
  const auto start = std::chrono::steady_clock::now();
  *result = ig.attribute(x, labels).values.to(kCPU);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(images.size(0)) / seconds;
}

int main(int argc, char** argv) {
  if (argc < 3) return std::fprintf(stderr, "usage: cpu_vs_gpu MODEL CIFAR_DIR [N]\n"), 2;
  const std::int64_t n = argc > 3 ? std::stoll(argv[3]) : 256;
  nn::Net net;
  net.load_state_dict(nn::SafetensorsFile::load(argv[1]).float_tensors());
  const data::CifarSplit test = data::load_cifar10(argv[2], /*train=*/false);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  const Tensor images = data::to_normalized_tensor(test, ids);
  const std::vector<std::int64_t> labels(test.labels.begin(), test.labels.begin() + n);

  Tensor on_cpu, on_gpu;
  const double cpu = images_per_second(net, images, labels, kCPU, &on_cpu);
  std::printf("CPU (%d threads): %.1f images/s\n", num_threads(), cpu);
  if (!cuda_is_available()) {
    std::printf("the GPU side is skipped: %s\n", cuda_unavailable_reason().c_str());
    return 0;
  }
  const double gpu = images_per_second(net, images, labels, Device::parse("cuda"), &on_gpu);
  const std::vector<float> a = on_cpu.to_vector(), b = on_gpu.to_vector();
  float worst = 0.f, scale = 0.f;
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(a[i]));
  }
  std::printf("GPU: %.1f images/s, %.1fx the CPU; largest difference %.2e (of max |a| %.2e)\n",
              gpu,
              gpu / cpu,
              worst,
              scale);
}
