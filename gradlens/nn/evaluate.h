// A model's accuracy on a CIFAR-10 split: every image through the model in batches, without a
// tape, with the per-class counts the tutorial prints.
#pragma once

#include <cstdint>
#include <vector>

#include "gradlens/data/cifar10.h"
#include "gradlens/export.h"
#include "gradlens/nn/module.h"

namespace gradlens::nn {

struct GRADLENS_API EvalResult {
  std::int64_t correct = 0, total = 0;
  std::int64_t class_correct[10] = {}, class_total[10] = {};
  std::vector<std::int64_t> predictions;  // one per image of the split, in order
  double accuracy() const {
    return total ? 100.0 * static_cast<double>(correct) / static_cast<double>(total) : 0.0;
  }
};

/// Predictions of `model` (on `device`, where it must already be) for every image of `split`,
/// normalized as the tutorial does, `batch_size` at a time.
GRADLENS_API EvalResult evaluate(Module& model,
                                 const data::CifarSplit& split,
                                 std::int64_t batch_size,
                                 Device device);

}  // namespace gradlens::nn
