// reshape/view and slice share storage; cat, index_rows and pick copy. Their backwards route the
// gradient back to the rows (or elements) it came from.
#include <algorithm>

#include "gradlens/autograd/ops.h"
#include "gradlens/autograd/ops/common.h"

namespace gradlens {

using detail::backend_of;

namespace {

struct ReshapeNode : Node {
  Shape in_shape;
  std::string_view name() const override { return Ops::reshape.name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    return {Tensor::make_view(dy, in_shape, 0)};
  }
};

struct SliceNode : Node {
  std::int64_t start = 0;
  std::string_view name() const override { return Ops::slice.name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    const Tensor& x = inputs[0];
    Tensor dx = Tensor::zeros(x.shape(), x.device());
    const std::int64_t row = x.dim() ? x.numel() / x.size(0) : 1;
    backend_of(dy).copy(dx.data() + start * row, dy.data(), dy.numel() * sizeof(float));
    return {dx};
  }
};

struct CatNode : Node {
  std::string_view name() const override { return Ops::cat.name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& needs) override {
    std::vector<Tensor> out(inputs.size());
    std::int64_t offset = 0;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      if (needs[k]) out[k] = Tensor::make_view(dy, inputs[k].shape(), offset);
      offset += inputs[k].numel();
    }
    return out;
  }
};

struct IndexRowsNode : Node {
  std::vector<std::int64_t> index;
  std::string_view name() const override { return Ops::index_rows.name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    const Tensor& x = inputs[0];
    Tensor dx = Tensor::empty(x.shape(), x.device());
    const std::int64_t row = x.numel() / x.size(0);
    detail::IndexBuffer idx(index, dy.device());
    backend_of(dy).index_rows_backward(
        dy.data(), idx.data(), dx.data(), static_cast<std::int64_t>(index.size()), row, x.size(0));
    return {dx};
  }
};

struct PickNode : Node {
  std::vector<std::int64_t> index;
  std::string_view name() const override { return Ops::pick.name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    const Tensor& x = inputs[0];
    Tensor dx = Tensor::empty(x.shape(), x.device());
    detail::IndexBuffer idx(index, dy.device());
    backend_of(dy).pick_backward(dy.data(), idx.data(), dx.data(), x.size(0), x.size(1));
    return {dx};
  }
};

}  // namespace

Tensor reshape(const Tensor& x, Shape shape) {
  detail::check_defined("reshape", x, "x");
  std::int64_t known = 1;
  int inferred = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      GRADLENS_CHECK(inferred < 0, "[reshape] more than one -1 in ", shape_str(shape));
      inferred = static_cast<int>(i);
    } else {
      GRADLENS_CHECK(shape[i] >= 0, "[reshape] invalid size in ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (inferred >= 0) {
    GRADLENS_CHECK(known > 0 && x.numel() % known == 0,
                   "[reshape] cannot view ",
                   shape_str(x.shape()),
                   " as ",
                   shape_str(shape));
    shape[static_cast<std::size_t>(inferred)] = x.numel() / known;
  }
  GRADLENS_CHECK(shape_numel(shape) == x.numel(),
                 "[reshape] cannot view ",
                 shape_str(x.shape()),
                 " as ",
                 shape_str(shape));
  Tensor y = Tensor::make_view(x, shape, 0);
  if (should_record({&x})) {
    auto node = std::make_shared<ReshapeNode>();
    node->in_shape = x.shape();
    record(y, node, {x});
  }
  return y;
}

Tensor slice(const Tensor& x, std::int64_t start, std::int64_t end) {
  const detail::OpScope scope("slice");
  detail::check_defined("slice", x, "x");
  GRADLENS_CHECK(x.dim() >= 1, "[slice] needs a batch dim, got ", shape_str(x.shape()));
  GRADLENS_CHECK(0 <= start && start <= end && end <= x.size(0),
                 "[slice] rows ",
                 start,
                 ":",
                 end,
                 " out of range for ",
                 shape_str(x.shape()));
  Shape shape = x.shape();
  const std::int64_t row = shape[0] ? x.numel() / shape[0] : 0;
  shape[0] = end - start;
  Tensor y = Tensor::make_view(x, shape, start * row);
  if (should_record({&x})) {
    auto node = std::make_shared<SliceNode>();
    node->start = start;
    record(y, node, {x});
  }
  return y;
}

Tensor cat(const std::vector<Tensor>& xs) {
  const detail::OpScope scope("cat");
  GRADLENS_CHECK(!xs.empty(), "[cat] no tensors given");
  detail::check_defined("cat", xs[0], "tensor 0");
  Shape shape = xs[0].shape();
  GRADLENS_CHECK(!shape.empty(), "[cat] needs a batch dim, got a scalar");
  std::int64_t rows = 0;
  bool record_it = false;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    detail::check_defined("cat", xs[k], "a tensor");
    detail::check_same_device("cat", xs[0], xs[k]);
    Shape rest = xs[k].shape();
    GRADLENS_CHECK(
        rest.size() == shape.size() && std::equal(rest.begin() + 1, rest.end(), shape.begin() + 1),
        "[cat] tensor ",
        k,
        " has shape ",
        shape_str(rest),
        ", expected [*",
        shape_str(Shape(shape.begin() + 1, shape.end())).substr(1));
    rows += rest[0];
    record_it = record_it || should_record({&xs[k]});
  }
  shape[0] = rows;
  Tensor y = Tensor::empty(shape, xs[0].device());
  std::int64_t offset = 0;
  for (const Tensor& x : xs) {
    backend_of(x).copy(y.data() + offset, x.data(), x.numel() * sizeof(float));
    offset += x.numel();
  }
  if (record_it) record(y, std::make_shared<CatNode>(), xs);
  return y;
}

Tensor index_rows(const Tensor& x, std::span<const std::int64_t> index) {
  const detail::OpScope scope("index_rows");
  detail::check_defined("index_rows", x, "x");
  GRADLENS_CHECK(x.dim() >= 1, "[index_rows] needs a batch dim, got ", shape_str(x.shape()));
  for (std::int64_t i : index) {
    GRADLENS_CHECK(0 <= i && i < x.size(0),
                   "[index_rows] index ",
                   i,
                   " out of range for ",
                   shape_str(x.shape()));
  }
  Shape shape = x.shape();
  shape[0] = static_cast<std::int64_t>(index.size());
  Tensor y = Tensor::empty(shape, x.device());
  const std::int64_t row = x.size(0) ? x.numel() / x.size(0) : 0;
  detail::IndexBuffer idx(index, x.device());
  backend_of(x).index_rows_forward(x.data(), idx.data(), y.data(), shape[0], row);
  if (should_record({&x})) {
    auto node = std::make_shared<IndexRowsNode>();
    node->index.assign(index.begin(), index.end());
    record(y, node, {x});
  }
  return y;
}

Tensor pick(const Tensor& x, std::span<const std::int64_t> index) {
  const detail::OpScope scope("pick");
  detail::check_rank("pick", x, 2, "x");
  GRADLENS_CHECK(static_cast<std::int64_t>(index.size()) == x.size(0),
                 "[pick] ",
                 index.size(),
                 " indices for ",
                 shape_str(x.shape()));
  for (std::int64_t i : index) {
    GRADLENS_CHECK(
        0 <= i && i < x.size(1), "[pick] target ", i, " out of range for ", shape_str(x.shape()));
  }
  Tensor y = Tensor::empty({x.size(0)}, x.device());
  detail::IndexBuffer idx(index, x.device());
  backend_of(x).pick_forward(x.data(), idx.data(), y.data(), x.size(0), x.size(1));
  if (should_record({&x})) {
    auto node = std::make_shared<PickNode>();
    node->index.assign(index.begin(), index.end());
    record(y, node, {x});
  }
  return y;
}

}  // namespace gradlens
