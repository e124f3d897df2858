// max_pool2d: each output is the first maximum of its window (PyTorch's scan order); the backward
// sends dy to that position. The node keeps x and y for DeepLift's max-pool rule.
#include "gradlens/autograd/ops/pool.h"

#include "gradlens/autograd/ops.h"
#include "gradlens/autograd/ops/common.h"

namespace gradlens {

namespace {

struct MaxPool2dNode : detail::MaxPool2dNodeBase {
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    Tensor dx = Tensor::empty(x.shape(), x.device());
    detail::backend_of(dy).max_pool2d_backward(params, dy.data(), indices(), dx.data());
    return {dx};
  }
};

}  // namespace

Tensor max_pool2d(const Tensor& x, std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  const detail::OpScope scope("max_pool2d");
  detail::check_rank("max_pool2d", x, 4, "input");
  if (stride == 0) stride = kernel;
  GRADLENS_CHECK(kernel >= 1 && stride >= 1 && padding >= 0 && 2 * padding <= kernel,
                 "[max_pool2d] invalid kernel ",
                 kernel,
                 ", stride ",
                 stride,
                 ", padding ",
                 padding);
  GRADLENS_CHECK(x.size(2) + 2 * padding >= kernel && x.size(3) + 2 * padding >= kernel,
                 "[max_pool2d] kernel ",
                 kernel,
                 " larger than the padded input ",
                 shape_str(x.shape()));
  const Pool2dParams p =
      make_pool2d_params(x.size(0), x.size(1), x.size(2), x.size(3), kernel, stride, padding);
  Tensor y = Tensor::empty({p.n, p.c, p.oh, p.ow}, x.device());
  auto index_storage = std::make_shared<Storage>(
      static_cast<std::size_t>(y.numel()) * sizeof(std::int32_t), x.device());
  detail::backend_of(x).max_pool2d_forward(
      p, x.data(), y.data(), static_cast<std::int32_t*>(index_storage->data()));
  if (should_record({&x})) {
    auto node = std::make_shared<MaxPool2dNode>();
    node->params = p;
    node->x = x.detach();
    node->y = y.detach();
    node->index_storage = std::move(index_storage);
    record(y, node, {x});
  }
  return y;
}

}  // namespace gradlens
