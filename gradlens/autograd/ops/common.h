// Internal helpers shared by the op files: argument checks, the kernel table of a tensor, and index
// buffers on a tensor's device.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "gradlens/autograd/error.h"
#include "gradlens/autograd/node.h"
#include "gradlens/autograd/tensor.h"
#include "gradlens/kernels/backend.h"

namespace gradlens::detail {

inline Backend& backend_of(const Tensor& t) { return backend_for(t.device()); }

inline void check_defined(std::string_view op, const Tensor& t, std::string_view what) {
  GRADLENS_CHECK(t.defined(), "[", op, "] ", what, " is an undefined tensor");
}

inline void check_same_device(std::string_view op, const Tensor& a, const Tensor& b) {
  GRADLENS_CHECK(a.device() == b.device(),
                 "[",
                 op,
                 "] tensors on different devices: ",
                 a.device().str(),
                 " ",
                 shape_str(a.shape()),
                 " and ",
                 b.device().str(),
                 " ",
                 shape_str(b.shape()));
}

inline void check_rank(std::string_view op,
                       const Tensor& t,
                       std::int64_t rank,
                       std::string_view what) {
  check_defined(op, t, what);
  GRADLENS_CHECK(t.dim() == rank,
                 "[",
                 op,
                 "] ",
                 what,
                 " must have ",
                 rank,
                 " dims, got ",
                 shape_str(t.shape()));
}

/// Integers copied to a device buffer for kernels that take indices or targets.
class IndexBuffer {
 public:
  IndexBuffer(std::span<const std::int64_t> values, Device device)
      : storage_(std::make_shared<Storage>(values.size() * sizeof(std::int64_t), device)) {
    if (!values.empty()) {
      backend_for(device).copy_from_host(
          storage_->data(), values.data(), values.size() * sizeof(std::int64_t));
    }
  }
  const std::int64_t* data() const { return static_cast<const std::int64_t*>(storage_->data()); }

 private:
  std::shared_ptr<Storage> storage_;
};

/// Gradient buffer for input i when the engine needs it, else undefined (kernels get null).
inline Tensor grad_buffer(const std::vector<bool>& needs, std::size_t i, const Tensor& like) {
  return needs[i] && like.defined() ? Tensor::empty(like.shape(), like.device()) : Tensor();
}

inline float* data_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }

/// Base of nodes whose rule overrides (DeepLift, GuidedBackprop) need the op's input and output.
struct UnaryNode : Node {
  Tensor x, y;  // detached
};

}  // namespace gradlens::detail
