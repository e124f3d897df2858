// conv2d (cross-correlation, zero padding): y[n,k] = sum_c x[n,c] * w[k,c] + b[k];
// the backward gives dx (transposed conv), dw (correlation of x with dy) and db (sum of dy).
// conv2d_relu: relu(conv2d(...)) as one op, the ReLU applied in the kernels' epilogue and its mask
// in the backward's prologue; one output tensor instead of two, no element-wise passes.
// conv2d_relu_pool: max_pool2d(conv2d_relu(...), 2) as one op, pooled straight from the kernels'
// output and its gradient put straight where the conv's backward reads it.
#include "gradlens/autograd/ops/conv2d.h"

#include <initializer_list>
#include <string_view>

#include "gradlens/autograd/hooks.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/autograd/ops/common.h"

namespace gradlens {

namespace {

// Rules are keyed by the separate ops' names, so one set between a fused forward and its backward
// would be skipped: refused instead.
void check_no_rule_since_fused(std::string_view op, std::initializer_list<OpId> fused) {
  for (const OpId& id : fused) {
    GRADLENS_CHECK(find_backward_override(id) == nullptr,
                   "[",
                   op,
                   "] a backward rule for ",
                   id.name(),
                   " was set after the forward pass fused it; set it (BackwardOverrideGuard) "
                   "before the forward");
  }
}

struct Conv2dNode : detail::Conv2dNodeBase {
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& needs) override {
    Tensor dx = detail::grad_buffer(needs, 0, inputs[0]);
    Tensor dw = detail::grad_buffer(needs, 1, inputs[1]);
    Tensor db = detail::grad_buffer(needs, 2, inputs[2]);
    detail::backend_of(dy).conv2d_backward(params,
                                           x.data(),
                                           w.data(),
                                           y.data(),
                                           dy.data(),
                                           detail::data_or_null(dx),
                                           detail::data_or_null(dw),
                                           detail::data_or_null(db));
    return {dx, dw, db};
  }
};

// The fused op's node. Its name is its own, so a rule for "relu" or "conv2d" never matches it: a
// model fuses only while no rule is active (any_backward_override), and a rule set between the
// forward and the backward is refused here rather than silently skipped.
struct Conv2dReluNode : Conv2dNode {
  std::string_view name() const override { return Ops::conv2d_relu.name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& needs) override {
    check_no_rule_since_fused("conv2d_relu", {Ops::relu, Ops::conv2d});
    return Conv2dNode::backward(dy, needs);
  }
};

struct Conv2dReluPoolNode : detail::Conv2dNodeBase {
  std::shared_ptr<Storage> index_storage;  // int32 [n, k, oh / 2, ow / 2] into each oh * ow plane
  std::string_view name() const override { return Ops::conv2d_relu_pool.name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& needs) override {
    check_no_rule_since_fused("conv2d_relu_pool", {Ops::relu, Ops::conv2d, Ops::max_pool2d});
    Tensor dx = detail::grad_buffer(needs, 0, inputs[0]);
    Tensor dw = detail::grad_buffer(needs, 1, inputs[1]);
    Tensor db = detail::grad_buffer(needs, 2, inputs[2]);
    detail::backend_of(dy).conv2d_relu_pool_backward(
        params,
        x.data(),
        w.data(),
        y.data(),
        static_cast<const std::int32_t*>(index_storage->data()),
        dy.data(),
        detail::data_or_null(dx),
        detail::data_or_null(dw),
        detail::data_or_null(db));
    return {dx, dw, db};
  }
};

enum class Fused { none, relu, relu_pool };

Tensor conv2d_op(const Tensor& x,
                 const Tensor& weight,
                 const Tensor& bias,
                 std::int64_t stride,
                 std::int64_t padding,
                 Fused fused) {
  static constexpr std::string_view kNames[] = {"conv2d", "conv2d_relu", "conv2d_relu_pool"};
  const detail::OpScope scope(kNames[static_cast<int>(fused)]);
  detail::check_rank("conv2d", x, 4, "input");
  detail::check_rank("conv2d", weight, 4, "weight");
  detail::check_same_device("conv2d", x, weight);
  GRADLENS_CHECK(stride >= 1 && padding >= 0,
                 "[conv2d] stride must be >= 1 and padding >= 0, got stride ",
                 stride,
                 ", padding ",
                 padding);
  GRADLENS_CHECK(weight.size(1) == x.size(1),
                 "[conv2d] weight expects ",
                 weight.size(1),
                 " input channels, got input ",
                 shape_str(x.shape()),
                 ", weight ",
                 shape_str(weight.shape()));
  if (bias.defined()) {
    detail::check_same_device("conv2d", x, bias);
    GRADLENS_CHECK(bias.shape() == Shape{weight.size(0)},
                   "[conv2d] bias must be [",
                   weight.size(0),
                   "], got ",
                   shape_str(bias.shape()));
  }
  GRADLENS_CHECK(
      x.size(2) + 2 * padding >= weight.size(2) && x.size(3) + 2 * padding >= weight.size(3),
      "[conv2d] kernel ",
      shape_str(weight.shape()),
      " larger than the padded input ",
      shape_str(x.shape()));
  Conv2dParams p = make_conv2d_params(x.size(0),
                                      x.size(1),
                                      x.size(2),
                                      x.size(3),
                                      weight.size(0),
                                      weight.size(2),
                                      weight.size(3),
                                      stride,
                                      padding);
  p.relu = fused != Fused::none;
  if (fused == Fused::relu_pool) {
    GRADLENS_CHECK(p.oh >= 2 && p.ow >= 2,
                   "[conv2d_relu_pool] the conv's output ",
                   shape_str({p.n, p.k, p.oh, p.ow}),
                   " is smaller than the 2x2 pool");
    Tensor y = Tensor::empty({p.n, p.k, p.oh / 2, p.ow / 2}, x.device());
    auto index_storage = std::make_shared<Storage>(
        static_cast<std::size_t>(y.numel()) * sizeof(std::int32_t), x.device());
    detail::backend_of(x).conv2d_relu_pool_forward(
        p,
        x.data(),
        weight.data(),
        detail::data_or_null(bias),
        y.data(),
        static_cast<std::int32_t*>(index_storage->data()));
    if (should_record({&x, &weight, &bias})) {
      auto node = std::make_shared<Conv2dReluPoolNode>();
      node->params = p;
      node->x = x.detach();
      node->w = weight.detach();
      node->y = y.detach();
      node->index_storage = std::move(index_storage);
      record(y, node, {x, weight, bias});
    }
    return y;
  }
  Tensor y = Tensor::empty({p.n, p.k, p.oh, p.ow}, x.device());
  detail::backend_of(x).conv2d_forward(
      p, x.data(), weight.data(), detail::data_or_null(bias), y.data());
  if (should_record({&x, &weight, &bias})) {
    std::shared_ptr<Conv2dNode> node =
        fused == Fused::relu ? std::make_shared<Conv2dReluNode>() : std::make_shared<Conv2dNode>();
    node->params = p;
    node->x = x.detach();
    node->w = weight.detach();
    node->y = y.detach();
    record(y, node, {x, weight, bias});
  }
  return y;
}

}  // namespace

Tensor conv2d(const Tensor& x,
              const Tensor& weight,
              const Tensor& bias,
              std::int64_t stride,
              std::int64_t padding) {
  return conv2d_op(x, weight, bias, stride, padding, Fused::none);
}

Tensor conv2d_relu(const Tensor& x,
                   const Tensor& weight,
                   const Tensor& bias,
                   std::int64_t stride,
                   std::int64_t padding) {
  return conv2d_op(x, weight, bias, stride, padding, Fused::relu);
}

Tensor conv2d_relu_pool(const Tensor& x,
                        const Tensor& weight,
                        const Tensor& bias,
                        std::int64_t stride,
                        std::int64_t padding) {
  return conv2d_op(x, weight, bias, stride, padding, Fused::relu_pool);
}

}  // namespace gradlens
