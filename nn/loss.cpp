#include "nn/loss.h"

#include "autograd/ops.h"

namespace gradlens::nn {

Tensor CrossEntropyLoss::operator()(const Tensor& logits,
                                    std::span<const std::int64_t> targets) const {
  return cross_entropy(logits, targets);
}

}  // namespace gradlens::nn
