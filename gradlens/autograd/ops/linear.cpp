// linear: y = x w^T + b; dx = dy w, dw = dy^T x, db = sum over rows of dy.
#include "gradlens/autograd/ops/linear.h"

#include "gradlens/autograd/ops.h"
#include "gradlens/autograd/ops/common.h"

namespace gradlens {

namespace {

struct LinearNode : detail::LinearNodeBase {
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& needs) override {
    Tensor dx = detail::grad_buffer(needs, 0, inputs[0]);
    Tensor dw = detail::grad_buffer(needs, 1, inputs[1]);
    Tensor db = detail::grad_buffer(needs, 2, inputs[2]);
    detail::backend_of(dy).linear_backward(x.data(),
                                           w.data(),
                                           dy.data(),
                                           detail::data_or_null(dx),
                                           detail::data_or_null(dw),
                                           detail::data_or_null(db),
                                           x.size(0),
                                           x.size(1),
                                           w.size(0));
    return {dx, dw, db};
  }
};

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const detail::OpScope scope("linear");
  detail::check_rank("linear", x, 2, "input");
  detail::check_rank("linear", weight, 2, "weight");
  detail::check_same_device("linear", x, weight);
  GRADLENS_CHECK(weight.size(1) == x.size(1),
                 "[linear] weight expects ",
                 weight.size(1),
                 " input features, got input ",
                 shape_str(x.shape()),
                 ", weight ",
                 shape_str(weight.shape()));
  if (bias.defined()) {
    detail::check_same_device("linear", x, bias);
    GRADLENS_CHECK(bias.shape() == Shape{weight.size(0)},
                   "[linear] bias must be [",
                   weight.size(0),
                   "], got ",
                   shape_str(bias.shape()));
  }
  Tensor y = Tensor::empty({x.size(0), weight.size(0)}, x.device());
  detail::backend_of(x).linear_forward(x.data(),
                                       weight.data(),
                                       detail::data_or_null(bias),
                                       y.data(),
                                       x.size(0),
                                       x.size(1),
                                       weight.size(0));
  if (should_record({&x, &weight, &bias})) {
    auto node = std::make_shared<LinearNode>();
    node->x = x.detach();
    node->w = weight.detach();
    node->y = y.detach();
    record(y, node, {x, weight, bias});
  }
  return y;
}

}  // namespace gradlens
