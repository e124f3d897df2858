// Internal: the linear node's saved state, visible to backward rules (LRP's epsilon rule needs the
// layer's input x and output y; a rule may reuse the node's own backward for dx = dy w).
#pragma once

#include "gradlens/autograd/ops/common.h"

namespace gradlens::detail {

struct LinearNodeBase : UnaryNode {
  Tensor w;  // detached; x and y (UnaryNode) are the input and the output, detached
  std::string_view name() const override { return Ops::linear.name(); }
};

}  // namespace gradlens::detail
