#include "tools/gradlens/common.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/data/transforms.h"
#include "gradlens/kernels/backend.h"
#include "gradlens/kernels/precision.h"
#include "gradlens/nn/safetensors.h"

namespace gradlens::cli {

EvalResult evaluate(nn::Net& net,
                    const data::CifarSplit& split,
                    std::int64_t batch_size,
                    Device device) {
  NoGradGuard no_grad;
  EvalResult r;
  r.predictions.reserve(static_cast<std::size_t>(split.size()));
  std::vector<std::int64_t> idx;
  for (std::int64_t start = 0; start < split.size(); start += batch_size) {
    const std::int64_t end = std::min(split.size(), start + batch_size);
    idx.resize(static_cast<std::size_t>(end - start));
    std::iota(idx.begin(), idx.end(), start);
    const Tensor x = data::to_normalized_tensor(split, idx).to(device);
    const std::vector<std::int64_t> predicted = argmax_rows(net(x));
    for (std::int64_t i = 0; i < end - start; ++i) {
      const std::int64_t pred = predicted[static_cast<std::size_t>(i)];
      const std::int64_t label = split.labels[static_cast<std::size_t>(start + i)];
      r.predictions.push_back(pred);
      r.class_total[label]++;
      r.total++;
      if (pred == label) {
        r.class_correct[label]++;
        r.correct++;
      }
    }
  }
  return r;
}

void print_accuracy(const EvalResult& r) {
  std::printf("Accuracy of the network on the %lld test images: %.2f %% (%lld/%lld)\n",
              static_cast<long long>(r.total),
              r.accuracy(),
              static_cast<long long>(r.correct),
              static_cast<long long>(r.total));
  for (int c = 0; c < 10; ++c) {
    const double acc = r.class_total[c] ? 100.0 * r.class_correct[c] / r.class_total[c] : 0.0;
    std::printf("Accuracy for class: %-5s is %.1f %%\n", data::kCifarClassNames[c].data(), acc);
  }
}

void load_model(nn::Net& net, const std::string& path) {
  if (!std::filesystem::exists(path)) throw std::runtime_error("model file not found: " + path);
  const auto file = nn::SafetensorsFile::load(path);
  try {
    net.load_state_dict(file.float_tensors());
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

void apply_precision(const std::string& precision, Device device) {
  const MatmulPrecision p = parse_matmul_precision(precision);
  if (p == MatmulPrecision::TF32 && device.is_cpu()) {
    throw std::runtime_error(
        "--precision tf32 needs --device cuda (TF32 is a tensor-core format; the CPU computes in "
        "float32)");
  }
  set_matmul_precision(p);
}

void apply_threads(int threads) {
  if (threads < 0) throw std::runtime_error("--threads must be >= 0");
  set_num_threads(threads == 0 ? static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))
                               : threads);
}

}  // namespace gradlens::cli
