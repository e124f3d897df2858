// softmax / log_softmax along the last dim, and cross_entropy = mean_i(logsumexp(x_i) - x_i[t_i]).
// Backwards: softmax dx = y * (dy - sum(dy * y)); log_softmax dx = dy - exp(y) * sum(dy);
// cross_entropy dx = dloss * (softmax(x) - onehot(t)) / N.
#include "gradlens/autograd/ops.h"
#include "gradlens/autograd/ops/common.h"

namespace gradlens {

using detail::backend_of;

namespace {

struct RowsCols {
  std::int64_t rows, cols;
};

RowsCols last_dim(const char* op, const Tensor& x) {
  detail::check_defined(op, x, "x");
  GRADLENS_CHECK(x.dim() >= 1 && x.size(-1) > 0,
                 "[",
                 op,
                 "] needs a non-empty last dim, got ",
                 shape_str(x.shape()));
  return {x.numel() / x.size(-1), x.size(-1)};
}

struct SoftmaxNode : detail::UnaryNode {  // x and y for DeepLift's softmax rule
  bool log = false;
  std::string_view name() const override { return (log ? Ops::log_softmax : Ops::softmax).name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    Tensor dx = Tensor::empty(y.shape(), y.device());
    const std::int64_t cols = y.size(-1), rows = y.numel() / cols;
    if (log) {
      backend_of(dy).log_softmax_backward(y.data(), dy.data(), dx.data(), rows, cols);
    } else {
      backend_of(dy).softmax_backward(y.data(), dy.data(), dx.data(), rows, cols);
    }
    return {dx};
  }
};

Tensor softmax_impl(const Tensor& x, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  const detail::OpScope scope(op);
  const auto [rows, cols] = last_dim(op, x);
  Tensor y = Tensor::empty(x.shape(), x.device());
  if (log) {
    backend_of(x).log_softmax_forward(x.data(), y.data(), rows, cols);
  } else {
    backend_of(x).softmax_forward(x.data(), y.data(), rows, cols);
  }
  if (should_record({&x})) {
    auto node = std::make_shared<SoftmaxNode>();
    node->x = x.detach();
    node->y = y.detach();
    node->log = log;
    record(y, node, {x});
  }
  return y;
}

struct CrossEntropyNode : Node {
  Tensor probs;
  std::shared_ptr<detail::IndexBuffer> targets;
  std::string_view name() const override { return Ops::cross_entropy.name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    Tensor dx = Tensor::empty(probs.shape(), probs.device());
    backend_of(dy).cross_entropy_backward(
        probs.data(), targets->data(), dy.data(), dx.data(), probs.size(0), probs.size(1));
    return {dx};
  }
};

}  // namespace

Tensor softmax(const Tensor& x) { return softmax_impl(x, false); }
Tensor log_softmax(const Tensor& x) { return softmax_impl(x, true); }

Tensor cross_entropy(const Tensor& logits, std::span<const std::int64_t> targets) {
  const detail::OpScope scope("cross_entropy");
  detail::check_rank("cross_entropy", logits, 2, "logits");
  const std::int64_t rows = logits.size(0), cols = logits.size(1);
  GRADLENS_CHECK(rows > 0 && static_cast<std::int64_t>(targets.size()) == rows,
                 "[cross_entropy] ",
                 targets.size(),
                 " targets for logits ",
                 shape_str(logits.shape()));
  for (std::int64_t t : targets) {
    GRADLENS_CHECK(0 <= t && t < cols,
                   "[cross_entropy] target ",
                   t,
                   " out of range for logits ",
                   shape_str(logits.shape()));
  }
  auto target_buffer = std::make_shared<detail::IndexBuffer>(targets, logits.device());
  Tensor probs = Tensor::empty(logits.shape(), logits.device());
  Tensor loss = Tensor::empty({}, logits.device());
  backend_of(logits).cross_entropy_forward(
      logits.data(), target_buffer->data(), probs.data(), loss.data(), rows, cols);
  if (should_record({&logits})) {
    auto node = std::make_shared<CrossEntropyNode>();
    node->probs = probs;
    node->targets = std::move(target_buffer);
    record(loss, node, {logits});
  }
  return loss;
}

}  // namespace gradlens
