#include "gradlens/nn/loss.h"

#include "gradlens/autograd/ops.h"

namespace gradlens::nn {

Tensor CrossEntropyLoss::operator()(const Tensor& logits,
                                    std::span<const std::int64_t> targets) const {
  return cross_entropy(logits, targets);
}

}  // namespace gradlens::nn
