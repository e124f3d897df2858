// Tensor handle and the copies between devices (always through the backends' copy kernels).
#include "gradlens/autograd/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <string>

#include "gradlens/autograd/engine.h"
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/node.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/kernels/backend.h"

namespace gradlens {

namespace {

void check_shape(const Shape& shape) {
  for (std::int64_t s : shape) {
    GRADLENS_CHECK(s >= 0, "[tensor] negative size in shape ", shape_str(shape));
  }
}

// Copies numel floats between any two devices.
void copy_floats(
    const float* src, Device src_device, float* dst, Device dst_device, std::int64_t n) {
  const std::size_t bytes = static_cast<std::size_t>(n) * sizeof(float);
  if (bytes == 0) return;
  if (src_device == dst_device) {
    backend_for(src_device).copy(dst, src, bytes);
  } else if (src_device.is_cpu()) {
    backend_for(dst_device).copy_from_host(dst, src, bytes);
  } else if (dst_device.is_cpu()) {
    backend_for(src_device).copy_to_host(dst, src, bytes);
  } else {  // between two GPUs: through the host, rare enough not to need peer copies
    std::vector<float> host(static_cast<std::size_t>(n));
    backend_for(src_device).copy_to_host(host.data(), src, bytes);
    backend_for(dst_device).copy_from_host(dst, host.data(), bytes);
  }
}

}  // namespace

Tensor Tensor::empty(Shape shape, Device device) {
  check_shape(shape);
  auto impl = std::make_shared<TensorImpl>();
  const auto n = shape_numel(shape);
  try {
    impl->storage = std::make_shared<Storage>(static_cast<std::size_t>(n) * sizeof(float), device);
  } catch (const OutOfMemoryError& e) {
    // The allocator knows the bytes; here we know the op asking and the tensor's shape.
    const std::string_view op = detail::OpScope::current();
    throw OutOfMemoryError("[" + std::string(op.empty() ? "tensor" : op) + "] output " +
                           shape_str(shape) + " on " + device.str() + ": " + e.what());
  }
  impl->shape = std::move(shape);
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(Shape shape, Device device) { return full(std::move(shape), 0.f, device); }

Tensor Tensor::full(Shape shape, float value, Device device) {
  Tensor t = empty(std::move(shape), device);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, Shape shape, Device device) {
  GRADLENS_CHECK(static_cast<std::int64_t>(values.size()) == shape_numel(shape),
                 "[tensor] from_vector: ",
                 values.size(),
                 " values do not fill shape ",
                 shape_str(shape));
  Tensor t = empty(std::move(shape), device);
  copy_floats(values.data(), kCPU, t.data(), device, t.numel());
  return t;
}

Tensor Tensor::scalar(float value, Device device) { return full({}, value, device); }

const Shape& Tensor::shape() const {
  GRADLENS_CHECK(impl_, "[tensor] use of an undefined tensor");
  return impl_->shape;
}

std::int64_t Tensor::size(std::int64_t d) const {
  const std::int64_t n = dim();
  GRADLENS_CHECK(
      d >= -n && d < n, "[tensor] dim ", d, " out of range for shape ", shape_str(shape()));
  return shape()[static_cast<std::size_t>(d < 0 ? d + n : d)];
}

std::int64_t Tensor::numel() const { return shape_numel(shape()); }
Device Tensor::device() const { return storage()->device(); }
float* Tensor::data() const { return static_cast<float*>(storage()->data()) + impl_->offset; }

const std::shared_ptr<Storage>& Tensor::storage() const {
  GRADLENS_CHECK(impl_, "[tensor] use of an undefined tensor");
  return impl_->storage;
}

std::int64_t Tensor::offset() const { return impl_->offset; }

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor out = empty(shape(), device);
  copy_floats(data(), this->device(), out.data(), device, numel());
  return out;
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> out(static_cast<std::size_t>(numel()));
  copy_floats(data(), device(), out.data(), kCPU, numel());
  return out;
}

std::int64_t first_nonfinite(const Tensor& t) {
  const std::vector<float> values = t.to_vector();
  const auto bad =
      std::find_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); });
  return bad == values.end() ? -1 : static_cast<std::int64_t>(bad - values.begin());
}

float Tensor::item() const {
  GRADLENS_CHECK(numel() == 1, "[item] expects one element, got shape ", shape_str(shape()));
  float value = 0.f;
  copy_floats(data(), device(), &value, kCPU, 1);
  return value;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), device());
  copy_floats(data(), device(), out.data(), device(), numel());
  return out;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = storage();
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  return Tensor(std::move(impl));
}

void Tensor::copy_(const Tensor& src) const {
  GRADLENS_CHECK(src.shape() == shape(),
                 "[copy_] source shape ",
                 shape_str(src.shape()),
                 " differs from destination ",
                 shape_str(shape()));
  copy_floats(src.data(), src.device(), data(), device(), numel());
}

void Tensor::fill_(float value) const { backend_for(device()).fill(data(), value, numel()); }

bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  GRADLENS_CHECK(is_leaf(), "[set_requires_grad] only leaves can change requires_grad");
  impl_->requires_grad = requires_grad;
  return *this;
}

const Tensor& Tensor::grad() const {
  GRADLENS_CHECK(impl_, "[tensor] use of an undefined tensor");
  return impl_->grad;
}

void Tensor::set_grad(const Tensor& grad) const { impl_->grad = grad; }
void Tensor::zero_grad() const { impl_->grad = Tensor(); }

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<Node> none;
  return impl_ ? impl_->grad_fn : none;
}

void Tensor::backward() const { gradlens::backward(*this); }

Tensor Tensor::make_view(const Tensor& base, Shape shape, std::int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->offset = base.offset() + offset;
  impl->shape = std::move(shape);
  return Tensor(std::move(impl));
}

void Tensor::set_grad_fn(std::shared_ptr<Node> node) const {
  impl_->grad_fn = std::move(node);
  impl_->requires_grad = true;
}

Tensor Tensor::operator[](std::int64_t i) const {
  GRADLENS_CHECK(defined() && dim() >= 1,
                 "[index] needs a tensor with a first dim, got ",
                 defined() ? shape_str(shape()) : std::string("an undefined tensor"));
  const std::int64_t n = size(0);
  GRADLENS_CHECK(i >= -n && i < n, "[index] row ", i, " out of range for ", shape_str(shape()));
  if (i < 0) i += n;
  Shape rest(shape().begin() + 1, shape().end());
  return reshape(slice(*this, i, i + 1), rest);
}

namespace {

// Items of a dim shown: all up to 6, else the first and last 3 around "...".
constexpr std::int64_t kEdgeItems = 3;

void print_dim(std::ostream& os,
               const std::vector<float>& values,
               const Shape& shape,
               std::size_t d,
               std::int64_t offset,
               int width,
               int indent) {
  std::int64_t stride = 1;
  for (std::size_t k = d + 1; k < shape.size(); ++k) stride *= shape[k];
  const std::int64_t n = shape[d];
  const bool summarize = n > 2 * kEdgeItems;
  const bool last_dim = d + 1 == shape.size();
  // Items of the last dim on one line; rows of the others one a line, aligned under the bracket.
  const auto separator = [&] {
    os << ',';
    if (last_dim) {
      os << ' ';
    } else {
      os << '\n';
      for (int k = 0; k <= indent; ++k) os << ' ';
    }
  };
  os << '[';
  for (std::int64_t i = 0; i < n; ++i) {
    if (summarize && i == kEdgeItems) {
      os << "...";
      separator();
      i = n - kEdgeItems;
    }
    if (last_dim) {
      os << std::setw(width) << values[static_cast<std::size_t>(offset + i)];
    } else {
      print_dim(os, values, shape, d + 1, offset + i * stride, width, indent + 1);
    }
    if (i + 1 < n) separator();
  }
  os << ']';
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  const std::vector<float> values = t.to_vector();
  std::ostringstream body;
  body << std::fixed << std::setprecision(4);
  int width = 1;
  for (const float v : values) {
    std::ostringstream one;
    one << std::fixed << std::setprecision(4) << v;
    width = std::max(width, static_cast<int>(one.str().size()));
  }
  if (t.dim() == 0) {
    body << values[0];
  } else {
    print_dim(body, values, t.shape(), 0, 0, width, static_cast<int>(sizeof("tensor(") - 1));
  }
  os << "tensor(" << body.str() << ", shape " << shape_str(t.shape()) << ", " << t.device().str()
     << ')';
  return os;
}

}  // namespace gradlens
