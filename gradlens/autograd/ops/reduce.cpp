// sum and mean over all elements -> [] or over one dim; d sum / dx = dy broadcast back.
#include <cmath>

#include "gradlens/autograd/ops.h"
#include "gradlens/autograd/ops/common.h"

namespace gradlens {

namespace {

struct SumNode : Node {
  Shape shape;
  std::string_view name() const override { return Ops::sum.name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    return {mul(Tensor::full(shape, 1.f, dy.device()), dy)};
  }
};

struct SumDimNode : Node {
  Shape in_shape;
  std::int64_t outer = 0, size = 0, inner = 0;
  std::string_view name() const override { return Ops::sum_dim.name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    const Tensor spread =
        mul(Tensor::full({outer, size, inner}, 1.f, dy.device()), reshape(dy, {outer, 1, inner}));
    return {reshape(spread, in_shape)};
  }
};

}  // namespace

Tensor sum_dim(const Tensor& x, std::int64_t dim) {
  const detail::OpScope scope("sum_dim");
  detail::check_defined("sum_dim", x, "x");
  const std::int64_t rank = x.dim();
  GRADLENS_CHECK(dim >= -rank && dim < rank,
                 "[sum_dim] dim ",
                 dim,
                 " out of range for ",
                 shape_str(x.shape()));
  if (dim < 0) dim += rank;
  const auto& shape = x.shape();
  std::int64_t outer = 1, inner = 1;
  for (std::int64_t d = 0; d < dim; ++d) outer *= shape[static_cast<std::size_t>(d)];
  for (std::int64_t d = dim + 1; d < rank; ++d) inner *= shape[static_cast<std::size_t>(d)];
  const std::int64_t size = shape[static_cast<std::size_t>(dim)];
  Shape out_shape = shape;
  out_shape.erase(out_shape.begin() + dim);
  Tensor y = Tensor::empty(out_shape, x.device());
  detail::backend_of(x).sum_dim(x.data(), outer, size, inner, y.data());
  if (should_record({&x})) {
    auto node = std::make_shared<SumDimNode>();
    node->in_shape = shape;
    node->outer = outer;
    node->size = size;
    node->inner = inner;
    record(y, node, {x});
  }
  return y;
}

Tensor mean_dim(const Tensor& x, std::int64_t dim) {
  const Tensor s = sum_dim(x, dim);
  const std::int64_t size = x.size(dim);
  GRADLENS_CHECK(size > 0, "[mean_dim] over an empty dim of ", shape_str(x.shape()));
  return mul_scalar(s, 1.f / static_cast<float>(size));
}

Tensor sum(const Tensor& x) {
  const detail::OpScope scope("sum");
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

std::vector<std::int64_t> argmax_rows(const Tensor& x) {
  detail::check_defined("argmax_rows", x, "x");
  GRADLENS_CHECK(x.dim() == 2 && x.size(1) > 0,
                 "[argmax_rows] expected x [N, C] with C > 0, got ",
                 shape_str(x.shape()));
  const std::vector<float> values = x.to_vector();
  const std::int64_t cols = x.size(1);
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(x.size(0)));
  for (std::int64_t i = 0; i < x.size(0); ++i) {
    const float* row = values.data() + i * cols;
    std::int64_t best = 0;
    for (std::int64_t j = 1; j < cols && !std::isnan(row[best]); ++j) {
      if (row[j] > row[best] || std::isnan(row[j])) best = j;
    }
    out.push_back(best);
  }
  return out;
}

}  // namespace gradlens
