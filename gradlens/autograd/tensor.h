// Tensor: a cheap handle to float32, contiguous, row-major data on one device, with the autograd
// fields (requires_grad, grad, grad_fn). Views (reshape, slice along the batch) share storage.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <vector>

#include "gradlens/autograd/shape.h"
#include "gradlens/autograd/storage.h"
#include "gradlens/export.h"
#include "gradlens/kernels/device.h"

namespace gradlens {

struct Node;
struct TensorImpl;

class GRADLENS_API Tensor {
 public:
  Tensor() = default;  // undefined: no storage (used for "no gradient")

  static Tensor empty(Shape shape, Device device = {});
  static Tensor zeros(Shape shape, Device device = {});
  static Tensor full(Shape shape, float value, Device device = {});
  static Tensor from_vector(const std::vector<float>& values, Shape shape, Device device = {});
  static Tensor scalar(float value, Device device = {});

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  std::int64_t dim() const { return static_cast<std::int64_t>(shape().size()); }
  std::int64_t size(std::int64_t d) const;  // negative d counts from the end
  std::int64_t numel() const;
  Device device() const;
  /// Pointer to the first element, on the tensor's device.
  float* data() const;
  const std::shared_ptr<Storage>& storage() const;
  std::int64_t offset() const;  // in elements, into storage()

  /// A tensor on `device` (this one when it is already there).
  Tensor to(Device device) const;
  std::vector<float> to_vector() const;
  /// The single value of a one-element tensor.
  float item() const;
  /// A deep copy with its own storage, outside the graph.
  Tensor clone() const;
  /// Same storage, no grad_fn, requires_grad false: saved tensors use it to avoid reference cycles.
  Tensor detach() const;
  /// Overwrites the values from `src` (same shape), outside the graph.
  void copy_(const Tensor& src) const;
  void fill_(float value) const;

  bool requires_grad() const;
  /// Only for leaves: tensors that no recorded op produced.
  Tensor& set_requires_grad(bool requires_grad = true);
  /// Accumulated by backward() into leaves that require grad; undefined until then.
  const Tensor& grad() const;
  void set_grad(const Tensor& grad) const;
  void zero_grad() const;  // drops the accumulated gradient
  const std::shared_ptr<Node>& grad_fn() const;
  bool is_leaf() const { return grad_fn() == nullptr; }
  /// Reverse-mode sweep from this scalar, accumulating into the .grad of every leaf on the way.
  void backward() const;

  /// Row i of the first dim (negative i counts from the end), the rest of the shape kept: a copy
  /// that stays on the tape, as x[i] in PyTorch. Throws std::invalid_argument naming the shape.
  Tensor operator[](std::int64_t i) const;

  TensorImpl* impl() const { return impl_.get(); }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

  // Internal: used by ops to build outputs.
  static Tensor make_view(const Tensor& base, Shape shape, std::int64_t offset);
  void set_grad_fn(std::shared_ptr<Node> node) const;

 private:
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<TensorImpl> impl_;
};

/// Row-major index of the first NaN or infinite element, or -1 when every element is finite.
GRADLENS_API std::int64_t first_nonfinite(const Tensor& t);

/// PyTorch's way: tensor([[0.1235, -1.0000], ...], shape [2, 2], cpu), at most 3 items at each
/// end of every dim beyond 6.
GRADLENS_API std::ostream& operator<<(std::ostream& os, const Tensor& t);

struct GRADLENS_API TensorImpl {
  std::shared_ptr<Storage> storage;
  std::int64_t offset = 0;
  Shape shape;
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;
};

}  // namespace gradlens
