// sum and mean over all elements -> []; d sum / dx = dy broadcast to x's shape.
#include "autograd/ops.h"
#include "autograd/ops/common.h"

namespace gradlens {

namespace {

struct SumNode : Node {
  Shape shape;
  std::string_view name() const override { return "sum"; }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    return {mul(Tensor::full(shape, 1.f, dy.device()), dy)};
  }
};

}  // namespace

Tensor sum(const Tensor& x) {
  detail::check_defined("sum", x, "x");
  Tensor y = Tensor::empty({}, x.device());
  detail::backend_of(x).sum(x.data(), x.numel(), y.data());
  if (should_record({&x})) {
    auto node = std::make_shared<SumNode>();
    node->shape = x.shape();
    record(y, node, {x});
  }
  return y;
}

Tensor mean(const Tensor& x) {
  detail::check_defined("mean", x, "x");
  GRADLENS_CHECK(x.numel() > 0, "[mean] of an empty tensor ", shape_str(x.shape()));
  return mul_scalar(sum(x), 1.f / static_cast<float>(x.numel()));
}

}  // namespace gradlens
