// CrossEntropyLoss: log_softmax then NLL, mean over the batch (PyTorch's defaults).
#pragma once

#include <cstdint>
#include <span>

#include "gradlens/autograd/tensor.h"
#include "gradlens/export.h"

namespace gradlens::nn {

struct GRADLENS_API CrossEntropyLoss {
  /// logits [N, C], targets N integers in [0, C) -> []
  Tensor operator()(const Tensor& logits, std::span<const std::int64_t> targets) const;
};

}  // namespace gradlens::nn
