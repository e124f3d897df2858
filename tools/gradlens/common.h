// Pieces the subcommands share: loading a model file, evaluating on a split, the thread setting.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gradlens/data/cifar10.h"
#include "gradlens/nn/lenet.h"

namespace gradlens::cli {

struct EvalResult {
  std::int64_t correct = 0, total = 0;
  std::int64_t class_correct[10] = {}, class_total[10] = {};
  std::vector<std::int64_t> predictions;
  double accuracy() const { return total ? 100.0 * static_cast<double>(correct) / total : 0.0; }
};

/// Logits of `net` on every image of `split`, batch by batch, without a tape.
EvalResult evaluate(nn::Net& net,
                    const data::CifarSplit& split,
                    std::int64_t batch_size,
                    Device device);
/// Prints the tutorial's "Accuracy of the network ..." and per-class lines.
void print_accuracy(const EvalResult& result);
/// Loads a safetensors state_dict into `net` (errors name the file and the tensor).
void load_model(nn::Net& net, const std::string& path);
/// 0 means every core.
void apply_threads(int threads);
/// --precision float32|tf32 (kernels/precision.h); tf32 asks for CUDA, where the tensor cores are.
void apply_precision(const std::string& precision, Device device);

}  // namespace gradlens::cli
