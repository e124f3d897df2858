// Internal: the max-pool node's saved state, visible to backward rules (DeepLift's max-pool rule
// needs the argmax of each half of its doubled batch).
#pragma once

#include "gradlens/autograd/ops/common.h"

namespace gradlens::detail {

struct MaxPool2dNodeBase : UnaryNode {
  Pool2dParams params{};
  std::shared_ptr<Storage> index_storage;  // int32 [n, c, oh, ow] into h*w
  const std::int32_t* indices() const {
    return static_cast<const std::int32_t*>(index_storage->data());
  }
  std::string_view name() const override { return Ops::max_pool2d.name(); }
};

}  // namespace gradlens::detail
