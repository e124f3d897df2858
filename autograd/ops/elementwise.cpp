// add, sub, mul with PyTorch broadcasting; affine (x * alpha + beta); relu.
// d(a+b) = (dy, dy); d(a-b) = (dy, -dy); d(a*b) = (dy*b, dy*a), each summed over broadcast dims.
// relu: dx = dy * (x > 0), subgradient 0 at x == 0.
#include <algorithm>

#include "autograd/ops.h"
#include "autograd/ops/common.h"

namespace gradlens {

using detail::backend_of;

namespace {

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add:
      return "add";
    case BinaryOp::Sub:
      return "sub";
    case BinaryOp::Mul:
      return "mul";
  }
  return "binary";
}

std::vector<std::int64_t> contiguous_strides(const Shape& shape) {
  std::vector<std::int64_t> strides(shape.size(), 1);
  for (std::size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

BroadcastParams broadcast(const char* op, const Shape& a, const Shape& b, Shape& out) {
  const std::size_t ndim = std::max(a.size(), b.size());
  GRADLENS_CHECK(ndim <= static_cast<std::size_t>(kMaxDims),
                 "[",
                 op,
                 "] at most ",
                 kMaxDims,
                 " dims, got ",
                 shape_str(a),
                 " and ",
                 shape_str(b));
  BroadcastParams p;
  p.ndim = static_cast<int>(ndim);
  out.assign(ndim, 1);
  const auto sa = contiguous_strides(a);
  const auto sb = contiguous_strides(b);
  for (std::size_t d = 0; d < ndim; ++d) {
    // Align trailing dims: dim d of the output is dim d - (ndim - rank) of each operand.
    const std::ptrdiff_t ia =
        static_cast<std::ptrdiff_t>(d) - static_cast<std::ptrdiff_t>(ndim - a.size());
    const std::ptrdiff_t ib =
        static_cast<std::ptrdiff_t>(d) - static_cast<std::ptrdiff_t>(ndim - b.size());
    const std::int64_t da = ia >= 0 ? a[static_cast<std::size_t>(ia)] : 1;
    const std::int64_t db = ib >= 0 ? b[static_cast<std::size_t>(ib)] : 1;
    GRADLENS_CHECK(da == db || da == 1 || db == 1,
                   "[",
                   op,
                   "] shapes ",
                   shape_str(a),
                   " and ",
                   shape_str(b),
                   " do not broadcast");
    out[d] = da == 1 ? db : da;
    p.shape[d] = out[d];
    p.a_strides[d] = (ia >= 0 && da != 1) ? sa[static_cast<std::size_t>(ia)] : 0;
    p.b_strides[d] = (ib >= 0 && db != 1) ? sb[static_cast<std::size_t>(ib)] : 0;
  }
  p.numel = shape_numel(out);
  p.a_numel = shape_numel(a);
  p.b_numel = shape_numel(b);
  return p;
}

struct BinaryNode : Node {
  BinaryOp op;
  BroadcastParams params;
  Tensor a, b;  // detached; only mul keeps them
  std::string_view name() const override { return binary_name(op); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& needs) override {
    Tensor da = detail::grad_buffer(needs, 0, inputs[0]);
    Tensor db = detail::grad_buffer(needs, 1, inputs[1]);
    backend_of(dy).binary_backward(op,
                                   params,
                                   detail::data_or_null(a),
                                   detail::data_or_null(b),
                                   dy.data(),
                                   detail::data_or_null(da),
                                   detail::data_or_null(db));
    return {da, db};
  }
};

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  detail::check_defined(name, a, "a");
  detail::check_defined(name, b, "b");
  detail::check_same_device(name, a, b);
  Shape out_shape;
  const BroadcastParams p = broadcast(name, a.shape(), b.shape(), out_shape);
  Tensor y = Tensor::empty(out_shape, a.device());
  backend_of(a).binary_forward(op, p, a.data(), b.data(), y.data());
  if (should_record({&a, &b})) {
    auto node = std::make_shared<BinaryNode>();
    node->op = op;
    node->params = p;
    if (op == BinaryOp::Mul) {
      node->a = a.detach();
      node->b = b.detach();
    }
    record(y, node, {a, b});
  }
  return y;
}

struct AffineNode : Node {
  float alpha = 1.f;
  std::string_view name() const override { return "affine"; }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    Tensor dx = Tensor::empty(dy.shape(), dy.device());
    backend_of(dy).affine(dy.data(), alpha, 0.f, dx.data(), dy.numel());
    return {dx};
  }
};

struct ReluNode : detail::UnaryNode {
  std::string_view name() const override { return "relu"; }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    Tensor dx = Tensor::empty(x.shape(), x.device());
    backend_of(dy).relu_backward(x.data(), dy.data(), dx.data(), x.numel());
    return {dx};
  }
};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }

Tensor affine(const Tensor& x, float alpha, float beta) {
  detail::check_defined("affine", x, "x");
  Tensor y = Tensor::empty(x.shape(), x.device());
  backend_of(x).affine(x.data(), alpha, beta, y.data(), x.numel());
  if (should_record({&x})) {
    auto node = std::make_shared<AffineNode>();
    node->alpha = alpha;
    record(y, node, {x});
  }
  return y;
}

Tensor relu(const Tensor& x) {
  detail::check_defined("relu", x, "x");
  Tensor y = Tensor::empty(x.shape(), x.device());
  backend_of(x).relu_forward(x.data(), y.data(), x.numel());
  if (should_record({&x})) {
    auto node = std::make_shared<ReluNode>();
    node->x = x.detach();
    node->y = y.detach();
    record(y, node, {x});
  }
  return y;
}

}  // namespace gradlens
