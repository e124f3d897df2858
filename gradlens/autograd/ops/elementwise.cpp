// add, sub, mul with PyTorch broadcasting; affine (x * alpha + beta); relu.
// d(a+b) = (dy, dy); d(a-b) = (dy, -dy); d(a*b) = (dy*b, dy*a), each summed over broadcast dims.
// relu: dx = dy * (x > 0), subgradient 0 at x == 0. div, the unary ops (abs, square, sqrt, sign,
// step, stabilize) and safe_div write their backwards with other ops.
#include <algorithm>

#include "gradlens/autograd/ops.h"
#include "gradlens/autograd/ops/common.h"

namespace gradlens {

using detail::backend_of;

namespace {

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add:
      return Ops::add.name().data();
    case BinaryOp::Sub:
      return Ops::sub.name().data();
    case BinaryOp::Mul:
      return Ops::mul.name().data();
    case BinaryOp::Div:
      return Ops::div.name().data();
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

// d(a/b) = (dy / b, -dy * y / b), each summed over broadcast dims; composed from mul and sub's
// reductions so no backend needs a div backward kernel.
struct DivNode : Node {
  BroadcastParams params;
  Tensor a, b, y;  // detached
  std::string_view name() const override { return Ops::div.name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& needs) override {
    Tensor da = detail::grad_buffer(needs, 0, inputs[0]);
    Tensor db = detail::grad_buffer(needs, 1, inputs[1]);
    Backend& be = backend_of(dy);
    if (da.defined()) {
      const Tensor inv_b = div(Tensor::full(b.shape(), 1.f, b.device()), b);
      be.binary_backward(
          BinaryOp::Mul, params, a.data(), inv_b.data(), dy.data(), da.data(), nullptr);
    }
    if (db.defined()) {
      const Tensor w = div(mul(dy, y), reshape(b, b.shape()));
      be.binary_backward(BinaryOp::Sub, params, nullptr, nullptr, w.data(), nullptr, db.data());
    }
    return {da, db};
  }
};

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  const detail::OpScope scope(name);
  detail::check_defined(name, a, "a");
  detail::check_defined(name, b, "b");
  detail::check_same_device(name, a, b);
  Shape out_shape;
  const BroadcastParams p = broadcast(name, a.shape(), b.shape(), out_shape);
  Tensor y = Tensor::empty(out_shape, a.device());
  backend_of(a).binary_forward(op, p, a.data(), b.data(), y.data());
  if (op == BinaryOp::Div && should_record({&a, &b})) {
    auto node = std::make_shared<DivNode>();
    node->params = p;
    node->a = a.detach();
    node->b = b.detach();
    node->y = y.detach();
    record(y, node, {a, b});
  } else if (should_record({&a, &b})) {
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
  std::string_view name() const override { return Ops::affine.name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    Tensor dx = Tensor::empty(dy.shape(), dy.device());
    backend_of(dy).affine(dy.data(), alpha, 0.f, dx.data(), dy.numel());
    return {dx};
  }
};

const char* unary_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Abs:
      return Ops::abs.name().data();
    case UnaryOp::Square:
      return Ops::square.name().data();
    case UnaryOp::Sqrt:
      return Ops::sqrt.name().data();
    case UnaryOp::Sign:
      return Ops::sign.name().data();
    case UnaryOp::Step:
      return Ops::step.name().data();
    case UnaryOp::Stabilize:
      return Ops::stabilize.name().data();
    case UnaryOp::Exp:
      return Ops::exp.name().data();
    case UnaryOp::Log:
      return Ops::log.name().data();
    case UnaryOp::Tanh:
      return Ops::tanh.name().data();
    case UnaryOp::Sigmoid:
      return Ops::sigmoid.name().data();
    case UnaryOp::LeakyRelu:
      return Ops::leaky_relu.name().data();
    case UnaryOp::ClampMin:
    case UnaryOp::ClampMax:
      return Ops::clamp.name().data();
  }
  return "unary";
}

// abs: dy * sign(x); square: 2 x dy; sqrt: dy / (2 y); sign, step: 0; stabilize: dy; exp: dy y;
// log: dy / x; tanh: dy (1 - y^2); sigmoid: dy y (1 - y); leaky_relu: dy where x > 0, else dy *
// slope; clamp: dy where the input passed unchanged (lo <= x <= hi, PyTorch's rule), else 0.
struct ElementwiseUnaryNode : detail::UnaryNode {
  UnaryOp op = UnaryOp::Abs;
  float param = 0.f;
  std::string_view name() const override { return unary_name(op); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    switch (op) {
      case UnaryOp::Abs:
        return {mul(dy, sign(x))};
      case UnaryOp::Square:
        return {mul(dy, mul_scalar(x, 2.f))};
      case UnaryOp::Sqrt:
        return {div(mul_scalar(dy, 0.5f), y)};
      case UnaryOp::Sign:
      case UnaryOp::Step:
        return {Tensor::zeros(x.shape(), x.device())};
      case UnaryOp::Stabilize:
        return {dy};
      case UnaryOp::Exp:
        return {mul(dy, y)};
      case UnaryOp::Log:
        return {div(dy, x)};
      case UnaryOp::Tanh:
        return {mul(dy, affine(square(y), -1.f, 1.f))};
      case UnaryOp::Sigmoid:
        return {mul(dy, mul(y, affine(y, -1.f, 1.f)))};
      case UnaryOp::LeakyRelu:
        return {mul(dy, affine(step(x), 1.f - param, param))};
      case UnaryOp::ClampMin:
      case UnaryOp::ClampMax:
        return {mul(dy, affine(step(abs(sub(x, y))), -1.f, 1.f))};
    }
    return {Tensor()};
  }
};

Tensor unary(UnaryOp op, const Tensor& x, float param = 0.f) {
  const detail::OpScope scope(unary_name(op));
  detail::check_defined(unary_name(op), x, "x");
  Tensor y = Tensor::empty(x.shape(), x.device());
  backend_of(x).unary_forward(op, x.data(), y.data(), x.numel(), param);
  if (should_record({&x})) {
    auto node = std::make_shared<ElementwiseUnaryNode>();
    node->op = op;
    node->param = param;
    node->x = x.detach();
    node->y = y.detach();
    record(y, node, {x});
  }
  return y;
}

// d/dnum = m / den, d/dden = -m * y / den, d/dfallback = 1 - m, with m = (|den| >= eps).
struct SafeDivNode : Node {
  float eps = 0.f;
  Tensor num, den, y;  // detached
  std::string_view name() const override { return Ops::safe_div.name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& needs) override {
    const Tensor zeros = Tensor::zeros(dy.shape(), dy.device());
    std::vector<Tensor> out(3);
    if (needs[0]) out[0] = safe_div(dy, den, eps, zeros);
    if (needs[1]) out[1] = neg(safe_div(mul(dy, y), den, eps, zeros));
    if (needs[2]) {
      const Tensor kept = safe_div(den, den, eps, zeros);  // 1 where the division was taken
      out[2] = mul(dy, affine(kept, -1.f, 1.f));
    }
    return out;
  }
};

struct ReluNode : detail::UnaryNode {
  std::string_view name() const override { return Ops::relu.name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    Tensor dx = Tensor::empty(x.shape(), x.device());
    backend_of(dy).relu_backward(x.data(), dy.data(), dx.data(), x.numel());
    return {dx};
  }
};

// dx = g * scale per channel and d_addend = g (when the residual add is fused), with g = dy masked
// by y > 0 when the ReLU is fused (y is then kept), else dy.
struct ChannelAffineNode : Node {
  Tensor scale, y;                    // detached; y only with the ReLU
  bool with_addend = false;           // inputs {x, addend}
  std::int64_t outer = 0, inner = 0;  // x as [outer, channels, inner]
  std::string_view name() const override {
    if (with_addend) {
      return y.defined() ? Ops::channel_affine_add_relu.name() : Ops::channel_affine_add.name();
    }
    return y.defined() ? Ops::channel_affine_relu.name() : Ops::channel_affine.name();
  }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& needs) override {
    Tensor dx = Tensor::empty(dy.shape(), dy.device());
    Tensor d_addend;
    if (with_addend && needs[1]) d_addend = Tensor::empty(dy.shape(), dy.device());
    backend_of(dy).channel_affine_backward(y.defined() ? y.data() : nullptr,
                                           dy.data(),
                                           scale.data(),
                                           dx.data(),
                                           d_addend.defined() ? d_addend.data() : nullptr,
                                           outer,
                                           scale.numel(),
                                           inner);
    if (!with_addend) return {dx};
    return {dx, d_addend};
  }
};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b); }

Tensor affine(const Tensor& x, float alpha, float beta) {
  const detail::OpScope scope("affine");
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

Tensor abs(const Tensor& x) { return unary(UnaryOp::Abs, x); }
Tensor square(const Tensor& x) { return unary(UnaryOp::Square, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::Sqrt, x); }
Tensor sign(const Tensor& x) { return unary(UnaryOp::Sign, x); }
Tensor step(const Tensor& x) { return unary(UnaryOp::Step, x); }
Tensor stabilize(const Tensor& x, float eps) { return unary(UnaryOp::Stabilize, x, eps); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::Log, x); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::Tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::Sigmoid, x); }
Tensor leaky_relu(const Tensor& x, float slope) { return unary(UnaryOp::LeakyRelu, x, slope); }

// One node for both bounds, so a model's clamp is one op for DeepLift's rescale rule.
Tensor clamp(const Tensor& x, float lo, float hi) {
  const detail::OpScope scope("clamp");
  detail::check_defined("clamp", x, "x");
  GRADLENS_CHECK(!(lo > hi), "[clamp] lower bound ", lo, " above upper bound ", hi);
  Tensor y = Tensor::empty(x.shape(), x.device());
  backend_of(x).unary_forward(UnaryOp::ClampMin, x.data(), y.data(), x.numel(), lo);
  backend_of(x).unary_forward(UnaryOp::ClampMax, y.data(), y.data(), x.numel(), hi);
  if (should_record({&x})) {
    auto node = std::make_shared<ElementwiseUnaryNode>();
    node->op = UnaryOp::ClampMin;
    node->x = x.detach();
    node->y = y.detach();
    record(y, node, {x});
  }
  return y;
}

Tensor safe_div(const Tensor& num, const Tensor& den, float eps, const Tensor& fallback) {
  const detail::OpScope scope("safe_div");
  detail::check_defined("safe_div", num, "num");
  detail::check_defined("safe_div", den, "den");
  detail::check_defined("safe_div", fallback, "fallback");
  GRADLENS_CHECK(num.shape() == den.shape() && num.shape() == fallback.shape(),
                 "[safe_div] shapes must agree, got num ",
                 shape_str(num.shape()),
                 ", den ",
                 shape_str(den.shape()),
                 ", fallback ",
                 shape_str(fallback.shape()));
  detail::check_same_device("safe_div", num, den);
  detail::check_same_device("safe_div", num, fallback);
  Tensor y = Tensor::empty(num.shape(), num.device());
  backend_of(num).safe_div(num.data(), den.data(), fallback.data(), eps, y.data(), num.numel());
  if (should_record({&num, &den, &fallback})) {
    auto node = std::make_shared<SafeDivNode>();
    node->eps = eps;
    node->num = num.detach();
    node->den = den.detach();
    node->y = y.detach();
    record(y, node, {num, den, fallback});
  }
  return y;
}

Tensor channel_affine(
    const Tensor& x, const Tensor& scale, const Tensor& shift, bool relu, const Tensor& addend) {
  const bool add = addend.defined();
  const char* op = add ? (relu ? "channel_affine_add_relu" : "channel_affine_add")
                       : (relu ? "channel_affine_relu" : "channel_affine");
  const detail::OpScope scope(op);
  detail::check_defined(op, x, "x");
  detail::check_defined(op, scale, "scale");
  detail::check_defined(op, shift, "shift");
  detail::check_same_device(op, x, scale);
  detail::check_same_device(op, x, shift);
  if (add) {
    detail::check_same_device(op, x, addend);
    GRADLENS_CHECK(addend.shape() == x.shape(),
                   "[",
                   op,
                   "] addend must have x's shape ",
                   shape_str(x.shape()),
                   "; got ",
                   shape_str(addend.shape()));
  }
  GRADLENS_CHECK(
      x.dim() >= 2 && scale.shape() == Shape{x.size(1)} && shift.shape() == scale.shape(),
      "[",
      op,
      "] x [N, C, ...] with scale and shift [C]; got x ",
      shape_str(x.shape()),
      ", scale ",
      shape_str(scale.shape()),
      " and shift ",
      shape_str(shift.shape()));
  GRADLENS_CHECK(!scale.requires_grad() && !shift.requires_grad(),
                 "[",
                 op,
                 "] scale and shift are constants: no gradient reaches them (use mul and add)");
  const std::int64_t outer = x.size(0), channels = x.size(1);
  const std::int64_t inner = x.numel() / std::max<std::int64_t>(outer * channels, 1);
  Tensor y = Tensor::empty(x.shape(), x.device());
  backend_of(x).channel_affine_forward(x.data(),
                                       scale.data(),
                                       shift.data(),
                                       add ? addend.data() : nullptr,
                                       y.data(),
                                       outer,
                                       channels,
                                       inner,
                                       relu);
  if (add ? should_record({&x, &addend}) : should_record({&x})) {
    auto node = std::make_shared<ChannelAffineNode>();
    node->scale = scale.detach();
    node->with_addend = add;
    node->outer = outer;
    node->inner = inner;
    if (relu) node->y = y.detach();
    if (add) {
      record(y, node, {x, addend});  // scale and shift are constants
    } else {
      record(y, node, {x});
    }
  }
  return y;
}

Tensor relu(const Tensor& x) {
  const detail::OpScope scope("relu");
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
