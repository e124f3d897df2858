// The graph runs node by node in the file's (topological) order, each node on gradlens ops; nodes
// with weights and activations are child modules named after the PyTorch module they were
// exported from, so hooks, layer methods and state_dict names work as on a hand-written Module.
// Layout nodes (Transpose, Pad, Concat, ...) are gathers; a grouped conv runs as one conv with a
// block-diagonal kernel, a dilated one with a spread kernel, uneven strides as stride 1 and a
// strided slice, asymmetric pads as an explicit pad: all compositions of existing ops, so forward,
// backward and CUDA come with them.
#include "gradlens/onnx/model.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <set>
#include <stdexcept>

#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/hooks.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/data/file.h"

namespace gradlens::onnx {

namespace {

constexpr std::size_t kMaxModelBytes = std::size_t{2} << 30;  // protobuf's own limit
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("[onnx] " + path + ": " + what);
}

// "/layer2/conv1/Conv" -> "layer2.conv1"; "/Flatten" -> "".
std::string scope_of(const std::string& node_name) {
  std::vector<std::string> parts;
  std::string part;
  for (const char c : node_name) {
    if (c == '/') {
      if (!part.empty()) parts.push_back(part);
      part.clear();
    } else {
      part.push_back(c);
    }
  }
  std::string path;
  for (const std::string& p : parts) path += (path.empty() ? "" : ".") + p;
  return path;
}

// "layer2.conv1.weight" -> "layer2.conv1"
std::string module_of_weight(const std::string& name) {
  const std::size_t dot = name.rfind('.');
  return dot == std::string::npos ? std::string() : name.substr(0, dot);
}

std::int64_t checked_count(const std::string& path, const ::onnx::TensorProto& t) {
  std::int64_t count = 1;
  for (const std::int64_t d : t.dims()) {
    if (d < 0 || (d > 0 && count > (std::int64_t{1} << 40) / d))
      fail(path,
           "tensor '" + t.name() + "' has a bad shape " +
               shape_str(Shape(t.dims().begin(), t.dims().end())));
    count *= d;
  }
  return count;
}

// A tensor's raw bytes or typed field, as `count` values of T.
template <typename T, typename Field>
std::vector<T> tensor_values(const std::string& path,
                             const ::onnx::TensorProto& t,
                             const Field& field) {
  const std::int64_t count = checked_count(path, t);
  std::vector<T> values(static_cast<std::size_t>(count));
  if (t.has_raw_data()) {
    if (t.raw_data().size() != values.size() * sizeof(T))
      fail(path,
           "tensor '" + t.name() + "' holds " + std::to_string(t.raw_data().size()) +
               " bytes, expected " + std::to_string(values.size() * sizeof(T)));
    if (!values.empty()) std::memcpy(values.data(), t.raw_data().data(), t.raw_data().size());
  } else {
    if (field.size() != count)
      fail(path,
           "tensor '" + t.name() + "' holds " + std::to_string(field.size()) +
               " values, expected " + std::to_string(count));
    std::copy(field.begin(), field.end(), values.begin());
  }
  return values;
}

Tensor tensor_from_proto(const std::string& path, const ::onnx::TensorProto& t) {
  if (t.data_type() != ::onnx::TensorProto::FLOAT)
    fail(path,
         "tensor '" + t.name() + "' has data type " + std::to_string(t.data_type()) +
             "; only float32 (1) is read as data");
  return Tensor::from_vector(tensor_values<float>(path, t, t.float_data()),
                             Shape(t.dims().begin(), t.dims().end()));
}

bool is_integer_tensor(const ::onnx::TensorProto& t) {
  return t.data_type() == ::onnx::TensorProto::INT64 || t.data_type() == ::onnx::TensorProto::INT32;
}

std::vector<std::int64_t> integers_from_proto(const std::string& path,
                                              const ::onnx::TensorProto& t) {
  if (t.data_type() == ::onnx::TensorProto::INT64)
    return tensor_values<std::int64_t>(path, t, t.int64_data());
  if (t.data_type() == ::onnx::TensorProto::INT32) {
    const auto v = tensor_values<std::int32_t>(path, t, t.int32_data());
    return {v.begin(), v.end()};
  }
  fail(path,
       "tensor '" + t.name() + "' has data type " + std::to_string(t.data_type()) +
           "; an int64 or int32 tensor is expected here");
}

// A node named in an error raised while the graph runs (the file's protobuf is gone by then).
class NodeRef {
 public:
  explicit NodeRef(std::string prefix) : prefix_(std::move(prefix)) {}
  [[noreturn]] void refuse(const std::string& what) const {
    throw std::runtime_error(prefix_ + what);
  }

 private:
  std::string prefix_;
};

// Attribute lookup with the node named in every error.
class Attributes {
 public:
  Attributes(const std::string& path, const ::onnx::NodeProto& node) : path_(path), node_(node) {}
  std::int64_t integer(const std::string& name, std::int64_t fallback) const {
    const auto* a = find(name);
    return a ? a->i() : fallback;
  }
  float real(const std::string& name, float fallback) const {
    const auto* a = find(name);
    return a ? a->f() : fallback;
  }
  std::vector<std::int64_t> integers(const std::string& name) const {
    const auto* a = find(name);
    return a ? std::vector<std::int64_t>(a->ints().begin(), a->ints().end())
             : std::vector<std::int64_t>{};
  }
  std::string text(const std::string& name, const std::string& fallback) const {
    const auto* a = find(name);
    return a ? a->s() : fallback;
  }
  const ::onnx::TensorProto* tensor(const std::string& name) const {
    const auto* a = find(name);
    return a && a->has_t() ? &a->t() : nullptr;
  }
  [[noreturn]] void refuse(const std::string& what) const { node().refuse(what); }
  NodeRef node() const {
    return NodeRef("[onnx] " + path_ + ": node '" + node_.name() + "' (" + node_.op_type() + "): ");
  }

 private:
  const ::onnx::AttributeProto* find(const std::string& name) const {
    for (const auto& a : node_.attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }
  std::string path_;
  const ::onnx::NodeProto& node_;
};

// The sliding-window geometry of Conv, MaxPool and AveragePool over H and W.
struct Window {
  std::int64_t kernel[2] = {1, 1}, stride[2] = {1, 1}, dilation[2] = {1, 1};
  std::int64_t pad_begin[2] = {0, 0}, pad_end[2] = {0, 0};
  std::string auto_pad = "NOTSET";
  bool ceil_mode = false;

  std::int64_t extent(int d) const { return (kernel[d] - 1) * dilation[d] + 1; }

  // Pads and output size of dim d (H = 0, W = 1) for an input of `size`, after auto_pad and
  // ceil_mode: pad_end grows so that the last window is whole.
  struct Resolved {
    std::int64_t begin, end, out;
    std::int64_t explicit_end;  // the end pad of the attributes (end adds or crops for the windows)
  };
  Resolved resolve(int d, std::int64_t size) const {
    std::int64_t begin = pad_begin[d], end = pad_end[d];
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const std::int64_t out = (size + stride[d] - 1) / stride[d];
      const std::int64_t total =
          std::max<std::int64_t>((out - 1) * stride[d] + extent(d) - size, 0);
      begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      end = total - begin;
    } else if (auto_pad == "VALID") {
      begin = end = 0;
    }
    const std::int64_t span = size + begin + end - extent(d);
    std::int64_t out = (ceil_mode ? (span + stride[d] - 1) / stride[d] : span / stride[d]) + 1;
    // PyTorch's and ONNX's rule: a window that would start in the end padding is dropped.
    if (ceil_mode && (out - 1) * stride[d] >= size + begin) --out;
    return {begin, (out - 1) * stride[d] + extent(d) - size - begin, out, end};
  }
};

// The window of a node's attributes for `kernel` (1 or 2 numbers): a 1-d window runs as 1 x L.
Window read_window(const Attributes& at, const std::vector<std::int64_t>& kernel) {
  const std::size_t rank = kernel.size();
  if (rank != 1 && rank != 2)
    at.refuse("1-d and 2-d windows only (kernel of " + std::to_string(rank) + " dims)");
  const std::size_t first = 2 - rank;  // the Window dim of the attributes' first number
  Window g;
  const auto each = [&](const char* name, std::int64_t* out) {
    const auto v = at.integers(name);
    if (v.empty()) return;
    if (v.size() != rank)
      at.refuse(std::string(name) + " must have " + std::to_string(rank) + " numbers");
    for (std::size_t i = 0; i < rank; ++i) out[first + i] = v[i];
  };
  for (std::size_t i = 0; i < rank; ++i) g.kernel[first + i] = kernel[i];
  each("strides", g.stride);
  each("dilations", g.dilation);
  const auto pads = at.integers("pads");
  if (!pads.empty()) {
    if (pads.size() != 2 * rank)
      at.refuse("pads must have " + std::to_string(2 * rank) + " numbers");
    for (std::size_t i = 0; i < rank; ++i) {
      g.pad_begin[first + i] = pads[i];
      g.pad_end[first + i] = pads[rank + i];
    }
  }
  for (int d = 0; d < 2; ++d)
    if (g.kernel[d] < 1 || g.stride[d] < 1 || g.dilation[d] < 1 || g.pad_begin[d] < 0 ||
        g.pad_end[d] < 0)
      at.refuse("kernel, strides and dilations must be positive and pads not negative");
  g.auto_pad = at.text("auto_pad", "NOTSET");
  if (g.auto_pad != "NOTSET" && g.auto_pad != "SAME_UPPER" && g.auto_pad != "SAME_LOWER" &&
      g.auto_pad != "VALID")
    at.refuse("auto_pad '" + g.auto_pad + "' is not an ONNX value");
  g.ceil_mode = at.integer("ceil_mode", 0) != 0;
  return g;
}

// [N, C, L] as [N, C, 1, L]; 4-d as it is.
Tensor as_planes(const Tensor& x) {
  return x.dim() == 3 ? reshape(x, {x.size(0), x.size(1), 1, x.size(2)}) : x;
}
// y back to x's rank: [N, C, 1, L] -> [N, C, L] when x was 1-d.
Tensor like_input(const Tensor& y, const Tensor& x) {
  return x.dim() == 3 ? reshape(y, {y.size(0), y.size(1), y.size(3)}) : y;
}

// conv2d with separate H and W strides: one stride runs natively, uneven ones as stride 1 and a
// strided slice. x is already padded.
Tensor strided_conv(
    const Tensor& x, const Tensor& w, const Tensor& b, const Window& g, bool relu_after = false) {
  if (g.stride[0] == g.stride[1])
    return relu_after ? conv2d_relu(x, w, b, g.stride[0], 0) : conv2d(x, w, b, g.stride[0], 0);
  if (relu_after) return relu(strided_conv(x, w, b, g));
  const Tensor full = conv2d(x, w, b, 1, 0);
  const std::int64_t oh = (full.size(2) - 1) / g.stride[0] + 1,
                     ow = (full.size(3) - 1) / g.stride[1] + 1;
  return strided_slice(
      full, {0, 0, 0, 0}, {full.size(0), full.size(1), oh, ow}, {1, 1, g.stride[0], g.stride[1]});
}

// The input padded for the window (value where it is not symmetric or not native), and the
// native padding left for the op.
struct Padded {
  Tensor x;
  std::int64_t native = 0;
};
Padded pad_for(const Tensor& x, const Window& g, float value, std::int64_t native_limit) {
  const auto h = g.resolve(0, x.size(2)), w = g.resolve(1, x.size(3));
  // The op's own symmetric padding does it when the pads are one number and no window needs more
  // at the end than that (the op drops what a floor-sized output leaves over, as ONNX does).
  if (h.begin == h.explicit_end && w.begin == w.explicit_end && h.begin == w.begin &&
      h.end <= h.explicit_end && w.end <= w.explicit_end && h.begin <= native_limit &&
      g.stride[0] == g.stride[1])
    return {x, h.begin};
  return {pad(x, {0, 0, h.begin, w.begin}, {0, 0, h.end, w.end}, value), 0};
}

// The gather index taking a grouped weight [K, C / group, R, S] to [K, C, R, S], zero outside each
// output channel's group: a grouped conv as one dense conv. (A depthwise conv pays C times its
// multiply-adds this way; a kernel of its own would not.)
std::vector<std::int64_t> block_diagonal_index(const Shape& w, std::int64_t group) {
  const std::int64_t k = w[0], c_per = w[1], rs = w[2] * w[3];
  const std::int64_t k_per = k / group, c = c_per * group;
  std::vector<std::int64_t> index(static_cast<std::size_t>(k * c * rs), -1);
  for (std::int64_t o = 0; o < k; ++o) {
    const std::int64_t first = (o / k_per) * c_per;
    for (std::int64_t j = 0; j < c_per; ++j)
      for (std::int64_t e = 0; e < rs; ++e)
        index[static_cast<std::size_t>((o * c + first + j) * rs + e)] = (o * c_per + j) * rs + e;
  }
  return index;
}

// A 2-d convolution of any window and group count over a dense weight [K, C / group, R, S].
// The block-diagonal index is built once per weight shape, not at every forward.
class GroupedConv {
 public:
  explicit GroupedConv(std::int64_t group) : group_(group) {}
  // relu_after: relu(conv(x)), fused into the conv kernel where it can be (see OnnxModel::forward).
  Tensor operator()(const Tensor& x,
                    const Tensor& weight,
                    const Tensor& bias,
                    const Window& g,
                    bool relu_after = false) {
    Tensor w = weight;
    if (group_ > 1) {
      if (index_shape_ != weight.shape()) {
        index_ = make_gather_index(block_diagonal_index(weight.shape(), group_), weight.shape());
        index_shape_ = weight.shape();
      }
      w = gather(weight,
                 {weight.size(0), weight.size(1) * group_, weight.size(2), weight.size(3)},
                 index_,
                 0.f);
    }
    if (g.dilation[0] > 1 || g.dilation[1] > 1) w = spread(w, {1, 1, g.dilation[0], g.dilation[1]});
    const Padded p = pad_for(x, g, 0.f, std::numeric_limits<std::int64_t>::max());
    if (p.native > 0)
      return relu_after ? conv2d_relu(p.x, w, bias, g.stride[0], p.native)
                        : conv2d(p.x, w, bias, g.stride[0], p.native);
    return strided_conv(p.x, w, bias, g, relu_after);
  }

 private:
  std::int64_t group_;
  std::shared_ptr<const GatherIndex> index_;  // with its inverse and device copies, made once
  Shape index_shape_;
};

class BatchNormNode;

class ConvNode : public nn::Module {
 public:
  ConvNode(Tensor w, Tensor b, Window g, std::int64_t group) : window(g), conv_(group) {
    weight = register_parameter("weight", std::move(w));
    if (b.defined()) bias = register_parameter("bias", std::move(b));
  }
  Tensor weight, bias;
  Window window;
  const BatchNormNode* folded_bn = nullptr;  // the BatchNorm after it, applied to weight and bias

  /// relu(this conv(x)) in one op, for OnnxModel::forward when nothing can see the conv's output.
  Tensor forward_relu(const Tensor& x) { return run(x, true); }

 protected:
  Tensor forward(const Tensor& x) override { return run(x, false); }
  Tensor run(const Tensor& x, bool relu_after);

 private:
  GroupedConv conv_;
  Tensor scale_, shift_;  // folded_bn's, as [K, 1, 1(, 1)] and [K] on the input's device
  std::uint64_t generation_ = ~std::uint64_t{0};
};

// ConvTranspose as the conv it is the gradient of: the input spread by the strides and padded by
// what the window leaves, convolved at stride 1 with the weight flipped and its channels swapped
// per group ([C, M / group, R, S] -> [M, C / group, R, S]).
class ConvTransposeNode : public nn::Module {
 public:
  ConvTransposeNode(Tensor w,
                    Tensor b,
                    Window g,
                    std::int64_t group,
                    std::vector<std::int64_t> output_padding,
                    std::vector<std::int64_t> output_shape)
      : window(g),
        group_(group),
        output_padding_(std::move(output_padding)),
        output_shape_(std::move(output_shape)),
        conv_(group) {
    weight = register_parameter("weight", std::move(w));
    if (b.defined()) bias = register_parameter("bias", std::move(b));
  }
  Tensor weight, bias;
  Window window;

 protected:
  Tensor forward(const Tensor& x) override {
    GRADLENS_CHECK(x.dim() == 3 || x.dim() == 4,
                   "[onnx] ConvTranspose expects [N, C, L] or [N, C, H, W], got ",
                   shape_str(x.shape()));
    const Tensor x4 = as_planes(x);
    const Tensor w4 = weight.dim() == 3
                          ? reshape(weight, {weight.size(0), weight.size(1), 1, weight.size(2)})
                          : weight;
    GRADLENS_CHECK(x4.size(1) == w4.size(0),
                   "[onnx] ConvTranspose of ",
                   w4.size(0),
                   " input channels got ",
                   shape_str(x.shape()));
    std::vector<std::int64_t> before(4, 0), after(4, 0);
    for (int d = 0; d < 2; ++d) {
      const std::int64_t in = x4.size(2 + d), s = window.stride[d], ext = window.extent(d);
      const std::int64_t out_pad = output_padding_[static_cast<std::size_t>(d)];
      const std::int64_t full = s * (in - 1) + out_pad + ext;
      std::int64_t begin = window.pad_begin[d], end = window.pad_end[d];
      const std::int64_t wanted = output_shape_[static_cast<std::size_t>(d)];
      if (wanted > 0 || window.auto_pad == "SAME_UPPER" || window.auto_pad == "SAME_LOWER") {
        const std::int64_t total = full - (wanted > 0 ? wanted : in * s);
        // Python's floor division, as ONNX's reference: a negative total (an output_shape past
        // the full size) adds its extra at the end.
        const std::int64_t half = total >= 0 ? total / 2 : -((1 - total) / 2);
        begin = window.auto_pad == "SAME_UPPER" ? half : total - half;
        end = total - begin;
      } else if (window.auto_pad == "VALID") {
        begin = end = 0;
      }
      before[static_cast<std::size_t>(2 + d)] = ext - 1 - begin;
      after[static_cast<std::size_t>(2 + d)] = ext - 1 - end + out_pad;
    }
    const Tensor spread_x = spread(x4, {1, 1, window.stride[0], window.stride[1]});
    Window unit;  // stride 1, no pads: the geometry is in the padding
    unit.dilation[0] = window.dilation[0];
    unit.dilation[1] = window.dilation[1];
    return like_input(conv_(pad(spread_x, before, after, 0.f), flipped(w4), bias, unit), x);
  }

 private:
  Tensor flipped(const Tensor& w) {
    if (flip_shape_ != w.shape()) {
      const std::int64_t c = w.size(0), m_per = w.size(1), r = w.size(2), s = w.size(3);
      const std::int64_t c_per = c / group_, m = m_per * group_;
      std::vector<std::int64_t> index(static_cast<std::size_t>(m * c_per * r * s), 0);
      std::size_t at = 0;
      for (std::int64_t o = 0; o < m; ++o)
        for (std::int64_t j = 0; j < c_per; ++j)
          for (std::int64_t i = 0; i < r; ++i)
            for (std::int64_t k = 0; k < s; ++k)
              index[at++] =
                  ((((o / m_per) * c_per + j) * m_per + o % m_per) * r + (r - 1 - i)) * s +
                  (s - 1 - k);
      flip_index_ = make_gather_index(std::move(index), w.shape());
      flip_shape_ = w.shape();
    }
    return gather(
        w, {w.size(1) * group_, w.size(0) / group_, w.size(2), w.size(3)}, flip_index_, 0.f);
  }
  std::int64_t group_;
  std::vector<std::int64_t> output_padding_, output_shape_;  // [H, W]; 0 = not given
  GroupedConv conv_;
  std::shared_ptr<const GatherIndex> flip_index_;
  Shape flip_shape_;
};

// max(a, b) = m a + (1 - m) b with m = step(a - b): exact, the gradient to the first of a tie.
Tensor larger(const Tensor& a, const Tensor& b) {
  const Tensor keep = step(sub(b, a));  // 1 where b is larger
  return add(mul(keep, b), mul(affine(keep, -1.f, 1.f), a));
}

// MaxPool: the native kernel for a square window with one stride; any other window (rectangular,
// uneven strides, dilated, 1-d) as the largest of its kernel offsets' strided slices, its pads
// holding the lowest float (not -inf, whose product with larger()'s 0 would be NaN).
class MaxPoolNode : public nn::Module {
 public:
  explicit MaxPoolNode(Window g) : window(g) {}
  Window window;

 protected:
  Tensor forward(const Tensor& x) override {
    GRADLENS_CHECK(x.dim() == 3 || x.dim() == 4,
                   "[onnx] MaxPool expects [N, C, L] or [N, C, H, W], got ",
                   shape_str(x.shape()));
    const Window& g = window;
    if (x.dim() == 4 && g.kernel[0] == g.kernel[1] && g.stride[0] == g.stride[1] &&
        g.dilation[0] == 1 && g.dilation[1] == 1) {
      const Padded p = pad_for(x, g, kNegInf, g.kernel[0] / 2);
      return max_pool2d(p.x, g.kernel[0], g.stride[0], p.native);
    }
    const Tensor x4 = as_planes(x);
    const auto h = g.resolve(0, x4.size(2)), w = g.resolve(1, x4.size(3));
    const Tensor padded = pad(
        x4, {0, 0, h.begin, w.begin}, {0, 0, h.end, w.end}, std::numeric_limits<float>::lowest());
    Tensor best;
    for (std::int64_t i = 0; i < g.kernel[0]; ++i)
      for (std::int64_t j = 0; j < g.kernel[1]; ++j) {
        const Tensor slice = strided_slice(padded,
                                           {0, 0, i * g.dilation[0], j * g.dilation[1]},
                                           {x4.size(0), x4.size(1), h.out, w.out},
                                           {1, 1, g.stride[0], g.stride[1]});
        best = best.defined() ? larger(best, slice) : slice;
      }
    return like_input(best, x);
  }
};

// AveragePool as a conv of each plane with a box kernel, divided by how many elements of the
// window count: the input, the explicit pads too with count_include_pad, never ceil_mode's extra.
class AveragePoolNode : public nn::Module {
 public:
  AveragePoolNode(Window g, bool count_include_pad) : window(g), count_pad(count_include_pad) {}
  Window window;
  bool count_pad = false;

 protected:
  Tensor forward(const Tensor& x) override {
    GRADLENS_CHECK(x.dim() == 3 || x.dim() == 4,
                   "[onnx] AveragePool expects [N, C, L] or [N, C, H, W], got ",
                   shape_str(x.shape()));
    const std::int64_t h = x.dim() == 4 ? x.size(2) : 1, w = x.size(-1);
    const Tensor planes = reshape(x, {x.size(0) * x.size(1), 1, h, w});
    const auto rh = window.resolve(0, h), rw = window.resolve(1, w);
    const Tensor box = Tensor::full({1, 1, window.kernel[0], window.kernel[1]}, 1.f, x.device());
    Tensor counted;
    {
      NoGradGuard no_grad;
      // 1 on the input, count_pad on the explicit pads, 0 on ceil_mode's extra end.
      const float pad_value = count_pad ? 1.f : 0.f;
      Tensor mask = pad(Tensor::full({1, 1, h, w}, 1.f, x.device()),
                        {0, 0, rh.begin, rw.begin},
                        {0, 0, rh.explicit_end, rw.explicit_end},
                        pad_value);
      mask =
          pad(mask, {0, 0, 0, 0}, {0, 0, rh.end - rh.explicit_end, rw.end - rw.explicit_end}, 0.f);
      counted = strided_conv(mask, box, {}, window);
    }
    const Tensor padded = pad(planes, {0, 0, rh.begin, rw.begin}, {0, 0, rh.end, rw.end}, 0.f);
    const Tensor summed = strided_conv(padded, box, {}, window);
    Shape out = x.shape();
    out[out.size() - 1] = summed.size(3);
    if (x.dim() == 4) out[2] = summed.size(2);
    return reshape(div(summed, counted), out);
  }
};

// Inference BatchNormalization as y = x * scale + shift per channel (dim 1), folded once from the
// running statistics (in double): linear, so DeepLift and LRP treat it as such.
class BatchNormNode : public nn::Module {
 public:
  BatchNormNode(Tensor gamma, Tensor beta, const Tensor& mean, const Tensor& var, float eps)
      : eps_(eps), mean_(mean.to_vector()), var_(var.to_vector()) {
    weight = register_parameter("weight", std::move(gamma));
    bias = register_parameter("bias", std::move(beta));
    refold();
  }
  Tensor weight, bias;
  bool folded = false;  // its conv applies scale and shift; it passes its input through

  std::int64_t channels() const { return static_cast<std::int64_t>(mean_.size()); }
  const std::vector<float>& scale() const { return scale_; }
  const std::vector<float>& shift() const { return shift_; }
  std::uint64_t generation() const { return generation_; }  // bumped by every refold
  void set_statistics(std::vector<float> mean, std::vector<float> var) {
    mean_ = std::move(mean);
    var_ = std::move(var);
  }
  // scale and shift from the current weight, bias and statistics, in double.
  void refold() {
    const auto g = weight.to_vector(), b = bias.to_vector();
    scale_.resize(g.size());
    shift_.resize(g.size());
    for (std::size_t c = 0; c < g.size(); ++c) {
      const double s = g[c] / std::sqrt(static_cast<double>(var_[c]) + static_cast<double>(eps_));
      scale_[c] = static_cast<float>(s);
      shift_[c] = static_cast<float>(b[c] - mean_[c] * s);
    }
    scale_t_ = shift_t_ = Tensor();
    ++generation_;
  }

  /// relu(this BatchNorm(x)) in one op, for OnnxModel::forward when nothing can see its output.
  Tensor forward_relu(const Tensor& x) { return run(x, true); }
  /// this BatchNorm(x) + addend (then its ReLU) in one op: a residual block's tail, likewise.
  Tensor forward_residual(const Tensor& x, const Tensor& addend, bool relu_after) {
    return run(x, relu_after, addend);
  }

 protected:
  Tensor forward(const Tensor& x) override { return folded ? x : run(x, false); }

  // One pass over the activations (mul, add and a ReLU were three each way: a seventh of
  // ResNet8's NoiseTunnel).
  Tensor run(const Tensor& x, bool relu_after, const Tensor& addend = Tensor()) {
    GRADLENS_CHECK(x.dim() >= 2 && x.size(1) == static_cast<std::int64_t>(scale_.size()),
                   "[onnx] BatchNormalization of ",
                   scale_.size(),
                   " channels got ",
                   shape_str(x.shape()));
    if (!scale_t_.defined() || scale_t_.device() != x.device()) {
      const Shape shape{static_cast<std::int64_t>(scale_.size())};
      scale_t_ = Tensor::from_vector(scale_, shape).to(x.device());
      shift_t_ = Tensor::from_vector(shift_, shape).to(x.device());
    }
    return channel_affine(x, scale_t_, shift_t_, relu_after, addend);
  }

 private:
  float eps_;
  std::vector<float> mean_, var_;
  std::vector<float> scale_, shift_;
  Tensor scale_t_, shift_t_;
  std::uint64_t generation_ = 0;
};

Tensor ConvNode::run(const Tensor& x, bool relu_after) {
  GRADLENS_CHECK(x.dim() == 3 || x.dim() == 4,
                 "[onnx] Conv expects [N, C, L] or [N, C, H, W], got ",
                 shape_str(x.shape()));
  Tensor w = weight, b = bias;
  if (folded_bn != nullptr) {
    // w * scale per output channel and b * scale + shift: the weights are small, so this costs
    // nothing next to the BatchNorm's two passes over the activations, and follows load_weights.
    if (generation_ != folded_bn->generation() || scale_.device() != x.device()) {
      Shape per_channel(static_cast<std::size_t>(weight.dim()), 1);
      per_channel[0] = weight.size(0);
      scale_ = Tensor::from_vector(folded_bn->scale(), per_channel).to(x.device());
      shift_ = Tensor::from_vector(folded_bn->shift(), {weight.size(0)}).to(x.device());
      generation_ = folded_bn->generation();
    }
    w = mul(weight, scale_);
    b = bias.defined() ? add(mul(bias, reshape(scale_, {weight.size(0)})), shift_) : shift_;
  }
  if (w.dim() == 3) w = reshape(w, {w.size(0), w.size(1), 1, w.size(2)});
  return like_input(conv_(as_planes(x), w, b, window, relu_after), x);
}

// Gemm: alpha * A' B' + beta * C with B an initializer, kept as a Linear weight [out, in].
class GemmNode : public nn::Module {
 public:
  GemmNode(Tensor w, Tensor b, bool trans_a, float alpha) : trans_a(trans_a), alpha(alpha) {
    weight = register_parameter("weight", std::move(w));
    if (b.defined()) bias = register_parameter("bias", std::move(b));
  }
  Tensor weight, bias;
  bool trans_a = false;
  float alpha = 1.f;

 protected:
  Tensor forward(const Tensor& x) override {
    GRADLENS_CHECK(x.dim() == 2, "[onnx] Gemm expects a matrix, got ", shape_str(x.shape()));
    const Tensor a = trans_a ? permute(x, {1, 0}) : x;
    if (alpha == 1.f) return linear(a, weight, bias);
    const Tensor y = affine(linear(a, weight), alpha, 0.f);
    return bias.defined() ? add(y, bias) : y;
  }
};

// An activation: a child module so that layer methods and hooks find it by name.
class ActivationNode : public nn::Module {
 public:
  explicit ActivationNode(std::function<Tensor(const Tensor&)> fn, bool is_relu = false)
      : is_relu(is_relu), fn_(std::move(fn)) {}
  const bool is_relu;  // a Relu node, which a conv before it may fuse

 protected:
  Tensor forward(const Tensor& x) override { return fn_(x); }

 private:
  std::function<Tensor(const Tensor&)> fn_;
};

// A module path's inner levels ("layer2" of "layer2.conv1"): it holds children. The model passes
// the output of the scope's last node through it, so its hooks see the block's output (LayerGradCam
// on "layer3"); its input there is that output too.
class Scope : public nn::Module {
 public:
  using nn::Module::register_module;

 protected:
  Tensor forward(const Tensor& x) override { return x; }
};

std::int64_t normalize_axis(const NodeRef& at, std::int64_t axis, std::int64_t rank) {
  if (axis < -rank || axis >= std::max<std::int64_t>(rank, 1))
    at.refuse("axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

Shape flatten_shape(const Tensor& x, std::int64_t axis) {
  std::int64_t outer = 1;
  for (std::int64_t d = 0; d < axis; ++d) outer *= x.size(d);
  return {outer, outer ? x.numel() / outer : 0};
}

// Softmax / LogSoftmax along `axis` (opset 13), or over the flattened dims from `axis` (before).
Tensor softmax_along(const Tensor& x, std::int64_t axis, bool coerce_2d, bool log) {
  const auto run = [log](const Tensor& t) { return log ? log_softmax(t) : softmax(t); };
  if (coerce_2d) return reshape(run(reshape(x, flatten_shape(x, axis))), x.shape());
  const std::int64_t rank = x.dim();
  if (axis == rank - 1) return run(x);
  std::vector<std::int64_t> order(static_cast<std::size_t>(rank));
  std::iota(order.begin(), order.end(), 0);
  std::rotate(order.begin() + axis, order.begin() + axis + 1, order.end());  // axis last
  std::vector<std::int64_t> back(order.size());
  for (std::size_t d = 0; d < order.size(); ++d) back[static_cast<std::size_t>(order[d])] = d;
  return permute(run(permute(x, order)), back);
}

// numpy.matmul for a 2-d B or batches of equal size.
Tensor matmul(const Tensor& a, const Tensor& b) {
  GRADLENS_CHECK(a.dim() >= 1 && b.dim() >= 1 && a.size(-1) == b.size(b.dim() >= 2 ? -2 : 0),
                 "[onnx] MatMul of ",
                 shape_str(a.shape()),
                 " and ",
                 shape_str(b.shape()));
  if (b.dim() == 1) {
    const Tensor y = matmul(a, reshape(b, {b.size(0), 1}));
    Shape out = y.shape();
    out.pop_back();
    return reshape(y, out);
  }
  if (a.dim() == 1) {
    const Tensor y = matmul(reshape(a, {1, a.size(0)}), b);
    Shape out = y.shape();
    out.erase(out.end() - 2);
    return reshape(y, out);
  }
  const std::int64_t k = a.size(-1), n = b.size(-1);
  Shape out = a.shape();
  out.back() = n;
  if (b.dim() == 2) return reshape(linear(reshape(a, {-1, k}), permute(b, {1, 0})), out);
  Shape a_batch(a.shape().begin(), a.shape().end() - 2),
      b_batch(b.shape().begin(), b.shape().end() - 2);
  // numpy's broadcasting of the batch dims, right-aligned; each side expanded by a product with
  // ones, whose backward sums the gradient back over the copies.
  Shape batch_shape(std::max(a_batch.size(), b_batch.size()), 1);
  for (std::size_t i = 0; i < batch_shape.size(); ++i) {
    const std::size_t from_end = batch_shape.size() - 1 - i;
    const std::int64_t da = from_end < a_batch.size() ? a_batch[a_batch.size() - 1 - from_end] : 1;
    const std::int64_t db = from_end < b_batch.size() ? b_batch[b_batch.size() - 1 - from_end] : 1;
    GRADLENS_CHECK(da == db || da == 1 || db == 1,
                   "[onnx] MatMul's batch dims do not broadcast: ",
                   shape_str(a.shape()),
                   " and ",
                   shape_str(b.shape()));
    batch_shape[i] = std::max(da, db);
  }
  const std::int64_t m = a.size(-2);
  const auto expanded =
      [&](const Tensor& t, const Shape& own, std::int64_t rows, std::int64_t cols) {
        if (own == batch_shape) return t;
        Shape full = batch_shape;
        full.push_back(rows);
        full.push_back(cols);
        return mul(t, Tensor::full(full, 1.f, t.device()));
      };
  const Tensor ab = expanded(a, a_batch, m, k), bb = expanded(b, b_batch, k, n);
  out = batch_shape;
  out.push_back(m);
  out.push_back(n);
  const std::int64_t batch = shape_numel(batch_shape);
  const Tensor a3 = reshape(ab, {batch, m, k}), b3 = reshape(bb, {batch, k, n});
  std::vector<Tensor> parts;
  for (std::int64_t i = 0; i < batch; ++i) {
    const Tensor ai = reshape(slice(a3, i, i + 1), {m, k});
    const Tensor bi = reshape(slice(b3, i, i + 1), {k, n});
    parts.push_back(reshape(linear(ai, permute(bi, {1, 0})), {1, m, n}));
  }
  return reshape(cat(parts), out);
}

enum class Reduction { Sum, Mean, SumSquare, Max };

// The largest element along `axis`, walked one slice at a time with larger().
Tensor max_along(const Tensor& x, std::int64_t axis) {
  Shape one = x.shape();
  one[static_cast<std::size_t>(axis)] = 1;
  std::vector<std::int64_t> starts(one.size(), 0), steps(one.size(), 1);
  Tensor best = strided_slice(x, starts, one, steps);
  for (std::int64_t i = 1; i < x.size(axis); ++i) {
    starts[static_cast<std::size_t>(axis)] = i;
    best = larger(best, strided_slice(x, starts, one, steps));
  }
  Shape out = x.shape();
  out.erase(out.begin() + axis);
  return reshape(best, out);
}

// ReduceSum / ReduceMean / ReduceSumSquare / ReduceMax over `axes` (all when empty), keeping them
// as size 1 when asked.
Tensor reduce(const Tensor& x, std::vector<std::int64_t> axes, bool keep, Reduction how) {
  const std::int64_t rank = x.dim();
  if (axes.empty()) {
    axes.resize(static_cast<std::size_t>(rank));
    std::iota(axes.begin(), axes.end(), 0);
  }
  for (std::int64_t& a : axes) a = a < 0 ? a + rank : a;
  std::sort(axes.begin(), axes.end(), std::greater<>());
  Tensor y = how == Reduction::SumSquare ? square(x) : x;
  Shape kept = x.shape();
  for (const std::int64_t a : axes) {
    y = how == Reduction::Mean  ? mean_dim(y, a)
        : how == Reduction::Max ? max_along(y, a)
                                : sum_dim(y, a);
    kept[static_cast<std::size_t>(a)] = 1;
  }
  return keep ? reshape(y, kept) : y;
}

}  // namespace

// A node ready to run: a child module on its first input, or a function of its inputs.
struct OnnxModel::Step {
  nn::Module* module = nullptr;
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  std::vector<std::string> inputs, outputs;
  std::size_t node = 0;  // index into info_
  std::string path;      // the node's scope, from its name ("layer2.relu1" for /layer2/relu1/Relu)
  std::vector<std::pair<std::string, nn::Module*>>
      scopes_after;  // scopes ending here, innermost first
};

OnnxModel::OnnxModel() = default;
OnnxModel::~OnnxModel() = default;

std::vector<std::string> supported_ops() {
  return {"Conv",
          "ConvTranspose",
          "BatchNormalization",
          "Relu",
          "LeakyRelu",
          "Sigmoid",
          "Tanh",
          "Clip",
          "Softmax",
          "LogSoftmax",
          "MaxPool",
          "AveragePool",
          "GlobalAveragePool",
          "Gemm",
          "MatMul",
          "Add",
          "Sub",
          "Mul",
          "Div",
          "Sum",
          "Flatten",
          "Reshape",
          "Transpose",
          "Pad",
          "Concat",
          "ReduceSum",
          "ReduceMean",
          "ReduceSumSquare",
          "ReduceMax",
          "Exp",
          "Log",
          "Identity",
          "Dropout",
          "Constant"};
}

std::unique_ptr<OnnxModel> OnnxModel::load(const std::string& path) {
  return parse(data::read_regular_file(path, kMaxModelBytes, "onnx"), path);
}

std::unique_ptr<OnnxModel> OnnxModel::parse(const std::string& bytes, const std::string& path) {
  ::onnx::ModelProto proto;
  if (!proto.ParseFromString(bytes)) fail(path, "not an ONNX model (the protobuf does not parse)");
  std::unique_ptr<OnnxModel> model(new OnnxModel());
  for (const auto& op : proto.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") model->opset_ = op.version();
  const std::int64_t opset = model->opset_;
  const ::onnx::GraphProto& graph = proto.graph();

  std::map<std::string, const ::onnx::TensorProto*> initializers;
  for (const auto& t : graph.initializer()) initializers[t.name()] = &t;
  std::map<std::string, std::vector<std::int64_t>> integers;  // shapes, axes, pads
  std::map<std::string, Tensor> floats;                       // constants read as data
  for (const auto& [name, t] : initializers)
    if (is_integer_tensor(*t)) integers[name] = integers_from_proto(path, *t);
  std::vector<std::string> data_inputs;
  for (const auto& in : graph.input())
    if (!initializers.count(in.name())) data_inputs.push_back(in.name());
  if (data_inputs.size() != 1 || graph.output_size() != 1)
    fail(path,
         "the graph has " + std::to_string(data_inputs.size()) + " data inputs and " +
             std::to_string(graph.output_size()) + " outputs; one of each is supported");
  model->input_ = data_inputs[0];
  for (const auto& in : graph.input()) {
    if (in.name() != model->input_ || !in.type().has_tensor_type()) continue;
    for (const auto& d : in.type().tensor_type().shape().dim())
      model->input_shape_.push_back(d.has_dim_value() ? d.dim_value() : -1);
  }
  model->output_ = graph.output(0).name();

  std::map<std::string, std::shared_ptr<Scope>> scopes;  // "layer2" -> its scope module
  std::set<std::string> used_paths;
  // The scope at dotted `scope_path`, made level by level; null for "".
  std::function<Scope*(const std::string&)> scope_at =
      [&](const std::string& scope_path) -> Scope* {
    if (scope_path.empty()) return nullptr;
    if (const auto it = scopes.find(scope_path); it != scopes.end()) return it->second.get();
    const std::size_t dot = scope_path.rfind('.');
    Scope* parent = dot == std::string::npos ? nullptr : scope_at(scope_path.substr(0, dot));
    const std::string level = dot == std::string::npos ? scope_path : scope_path.substr(dot + 1);
    auto scope = std::make_shared<Scope>();
    if (parent)
      parent->register_module(level, scope);
    else
      model->register_module(level, scope);
    used_paths.insert(scope_path);
    scopes.emplace(scope_path, scope);
    return scope.get();
  };
  // Registers `module` at the dotted `module_path` (made unique with a suffix _2, _3, ...).
  auto place = [&](const std::string& module_path, std::shared_ptr<nn::Module> module) {
    std::string name = module_path;
    for (int k = 2; name.empty() || used_paths.count(name) || scopes.count(name); ++k)
      name = (module_path.empty() ? "node" : module_path) + "_" + std::to_string(k);
    used_paths.insert(name);
    const std::size_t dot = name.rfind('.');
    if (dot == std::string::npos) {
      model->register_module(name, module);
    } else {
      scope_at(name.substr(0, dot))->register_module(name.substr(dot + 1), module);
    }
    return module.get();
  };
  auto weight = [&](const Attributes& at, const ::onnx::NodeProto& node, int i) -> Tensor {
    if (node.input_size() <= i || node.input(i).empty()) return {};
    const auto it = initializers.find(node.input(i));
    if (it == initializers.end())
      at.refuse("input " + std::to_string(i) + " ('" + node.input(i) +
                "') must be an initializer (a weight in the file)");
    return tensor_from_proto(path, *it->second);
  };
  auto ints = [&](const Attributes& at, const ::onnx::NodeProto& node, int i) {
    const auto it = integers.find(node.input(i));
    if (it == integers.end())
      at.refuse("input " + std::to_string(i) + " ('" + node.input(i) +
                "') must be an integer constant of the file");
    return it->second;
  };
  auto has_input = [](const ::onnx::NodeProto& node, int i) {
    return node.input_size() > i && !node.input(i).empty();
  };
  // A float scalar from an optional constant input (Clip's bounds, Pad's value).
  auto scalar = [&](const Attributes& at, const ::onnx::NodeProto& node, int i, float fallback) {
    if (!has_input(node, i)) return fallback;
    const Tensor t = weight(at, node, i);
    if (t.numel() != 1) at.refuse("input " + std::to_string(i) + " must be one number");
    return t.to_vector()[0];
  };

  for (const auto& node : graph.node()) {
    const Attributes at(path, node);
    NodeInfo info{node.name(), node.op_type(), scope_of(node.name()), {}, {}};
    info.inputs.assign(node.input().begin(), node.input().end());
    info.outputs.assign(node.output().begin(), node.output().end());
    auto step = std::make_unique<Step>();
    step->inputs = info.inputs;
    step->outputs = info.outputs;
    const std::string& op = node.op_type();
    if (!node.domain().empty() && node.domain() != "ai.onnx")
      at.refuse("domain '" + node.domain() + "' is not supported");
    bool batch_norm = false;
    auto module_step = [&](const std::string& module_path, std::shared_ptr<nn::Module> m) {
      step->module = place(module_path, std::move(m));
      step->inputs.resize(1);
      info.module_path = module_path;
      if (batch_norm) model->batch_norms_.emplace_back(module_path, step->module);
    };
    auto activation = [&](std::function<Tensor(const Tensor&)> fn) {
      module_step(info.module_path, std::make_shared<ActivationNode>(std::move(fn)));
    };
    using Inputs = std::vector<Tensor>;
    if (op == "Conv" || op == "ConvTranspose") {
      const bool transposed = op == "ConvTranspose";
      const Tensor w = weight(at, node, 1);
      if (!w.defined() || (w.dim() != 3 && w.dim() != 4))
        at.refuse("needs a 3-d or 4-d weight initializer (1-d and 2-d convolutions only)");
      const std::int64_t group = at.integer("group", 1);
      // w.size(0) is the output channels of a Conv, the input channels of a ConvTranspose.
      if (group < 1 || w.size(0) % group != 0)
        at.refuse("group " + std::to_string(group) + " does not divide the " +
                  std::to_string(w.size(0)) + (transposed ? " input" : " output") + " channels");
      const std::vector<std::int64_t> window_dims(w.shape().begin() + 2, w.shape().end());
      const auto kernel = at.integers("kernel_shape");
      if (!kernel.empty() && kernel != window_dims)
        at.refuse("kernel_shape disagrees with the weight " + shape_str(w.shape()));
      const Window g = read_window(at, window_dims);
      if (!transposed) {
        module_step(module_of_weight(node.input(1)),
                    std::make_shared<ConvNode>(w, weight(at, node, 2), g, group));
      } else {
        // [H, W] of the attributes, 1-d ones in W; 0 = not given.
        const auto hw = [&](const char* name) {
          std::vector<std::int64_t> v = at.integers(name), out(2, 0);
          if (v.empty()) return out;
          if (v.size() != window_dims.size())
            at.refuse(std::string(name) + " must have " + std::to_string(window_dims.size()) +
                      " numbers");
          std::copy(v.begin(), v.end(), out.end() - static_cast<std::ptrdiff_t>(v.size()));
          return out;
        };
        module_step(
            module_of_weight(node.input(1)),
            std::make_shared<ConvTransposeNode>(
                w, weight(at, node, 2), g, group, hw("output_padding"), hw("output_shape")));
      }
    } else if (op == "BatchNormalization") {
      if (node.input_size() != 5) at.refuse("needs scale, bias, mean and variance");
      if (at.integer("training_mode", 0) != 0 || node.output_size() > 1)
        at.refuse("training mode (running statistics as outputs) is not supported");
      batch_norm = true;
      module_step(module_of_weight(node.input(1)),
                  std::make_shared<BatchNormNode>(weight(at, node, 1),
                                                  weight(at, node, 2),
                                                  weight(at, node, 3),
                                                  weight(at, node, 4),
                                                  at.real("epsilon", 1e-5f)));
    } else if (op == "Gemm" && initializers.count(node.input(1))) {
      Tensor w = weight(at, node, 1);
      if (w.dim() != 2) at.refuse("needs a 2-d weight initializer");
      if (at.integer("transB", 0) == 0) {
        NoGradGuard no_grad;
        w = permute(w, {1, 0});
      }
      Tensor c;
      const float beta = at.real("beta", 1.f);
      if (has_input(node, 2)) c = affine(weight(at, node, 2), beta, 0.f);
      Tensor bias;
      if (c.defined() && c.dim() == 1 && c.size(0) == w.size(0)) {
        bias = c;
        c = Tensor();
      }
      const bool trans_a = at.integer("transA", 0) != 0;
      const float alpha = at.real("alpha", 1.f);
      module_step(module_of_weight(node.input(1)),
                  std::make_shared<GemmNode>(w, bias, trans_a, alpha));
      if (c.defined()) {
        // A bias of another shape ([M, N], [1], a scalar) is added after the module.
        const std::string product = node.output(0) + "::product";
        const std::string bias_name = node.output(0) + "::bias";
        floats[bias_name] = c;
        step->outputs = {product};
        step->path = scope_of(node.name());
        step->node = model->info_.size();
        model->steps_.push_back(std::move(step));
        step = std::make_unique<Step>();
        step->inputs = {product, bias_name};
        step->outputs = {node.output(0)};
        step->fn = [](const Inputs& v) { return add(v[0], v[1]); };
      }
    } else if (op == "Gemm" || op == "MatMul") {
      const bool gemm = op == "Gemm";
      const bool ta = gemm && at.integer("transA", 0) != 0,
                 tb = gemm && at.integer("transB", 0) != 0;
      const float alpha = gemm ? at.real("alpha", 1.f) : 1.f,
                  beta = gemm ? at.real("beta", 1.f) : 1.f;
      step->fn = [ta, tb, alpha, beta](const Inputs& v) {
        const Tensor a = ta ? permute(v[0], {1, 0}) : v[0];
        const Tensor b = tb ? permute(v[1], {1, 0}) : v[1];
        Tensor y = matmul(a, b);
        if (alpha != 1.f) y = affine(y, alpha, 0.f);
        if (v.size() > 2 && v[2].defined())
          y = add(y, beta == 1.f ? v[2] : affine(v[2], beta, 0.f));
        return y;
      };
    } else if (op == "Relu") {
      module_step(info.module_path,
                  std::make_shared<ActivationNode>([](const Tensor& x) { return relu(x); },
                                                   /*is_relu=*/true));
    } else if (op == "LeakyRelu") {
      const float slope = at.real("alpha", 0.01f);
      activation([slope](const Tensor& x) { return leaky_relu(x, slope); });
    } else if (op == "Sigmoid") {
      activation([](const Tensor& x) { return sigmoid(x); });
    } else if (op == "Exp") {
      activation([](const Tensor& x) { return exp(x); });
    } else if (op == "Log") {
      activation([](const Tensor& x) { return log(x); });
    } else if (op == "Tanh") {
      activation([](const Tensor& x) { return tanh(x); });
    } else if (op == "Clip") {
      float lo = -std::numeric_limits<float>::infinity(),
            hi = std::numeric_limits<float>::infinity();
      if (opset < 11) {
        lo = at.real("min", lo);
        hi = at.real("max", hi);
      } else {
        lo = scalar(at, node, 1, lo);
        hi = scalar(at, node, 2, hi);
      }
      activation([lo, hi](const Tensor& x) { return clamp(x, lo, hi); });
    } else if (op == "Softmax" || op == "LogSoftmax") {
      const bool log = op == "LogSoftmax";
      const std::int64_t axis = at.integer("axis", opset >= 13 ? -1 : 1);
      const bool coerce = opset < 13;
      activation([axis, coerce, log, ref = at.node()](const Tensor& x) {
        return softmax_along(x, normalize_axis(ref, axis, x.dim()), coerce, log);
      });
    } else if (op == "MaxPool") {
      const Window g = read_window(at, at.integers("kernel_shape"));
      if (node.output_size() > 1) at.refuse("the indices output is not supported");
      if (at.integer("storage_order", 0) != 0) at.refuse("storage_order 1 is not supported");
      module_step(info.module_path, std::make_shared<MaxPoolNode>(g));
    } else if (op == "AveragePool") {
      const Window g = read_window(at, at.integers("kernel_shape"));
      if (g.dilation[0] != 1 || g.dilation[1] != 1) at.refuse("dilations are not supported");
      module_step(info.module_path,
                  std::make_shared<AveragePoolNode>(g, at.integer("count_include_pad", 0) != 0));
    } else if (op == "GlobalAveragePool") {
      step->fn = [](const Inputs& v) {
        const Tensor& in = v[0];
        GRADLENS_CHECK(in.dim() >= 3,
                       "[onnx] GlobalAveragePool expects [N, C, ...], got ",
                       shape_str(in.shape()));
        Shape kept(static_cast<std::size_t>(in.dim()), 1);
        kept[0] = in.size(0);
        kept[1] = in.size(1);
        return reshape(mean_dim(reshape(in, {in.size(0), in.size(1), -1}), 2), kept);
      };
    } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
      const char kind = op[0];
      step->fn = [kind](const Inputs& v) {
        switch (kind) {
          case 'A':
            return add(v[0], v[1]);
          case 'S':
            return sub(v[0], v[1]);
          case 'M':
            return mul(v[0], v[1]);
          default:
            return div(v[0], v[1]);
        }
      };
    } else if (op == "Sum") {
      step->fn = [](const Inputs& v) {
        Tensor y = v[0];
        for (std::size_t i = 1; i < v.size(); ++i) y = add(y, v[i]);
        return y;
      };
    } else if (op == "Flatten") {
      const std::int64_t axis = at.integer("axis", 1);
      step->fn = [axis, at = at.node()](const Inputs& v) {
        const std::int64_t rank = v[0].dim(), a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a > rank)
          at.refuse("axis " + std::to_string(axis) + " out of range for " +
                    shape_str(v[0].shape()));
        return reshape(v[0], flatten_shape(v[0], a));
      };
    } else if (op == "Reshape") {
      const std::vector<std::int64_t> shape = ints(at, node, 1);
      const bool allow_zero = at.integer("allowzero", 0) != 0;
      step->inputs.resize(1);
      step->fn = [shape, allow_zero](const Inputs& v) {
        Shape s(shape.begin(), shape.end());
        for (std::size_t d = 0; d < s.size(); ++d)
          if (s[d] == 0 && !allow_zero) s[d] = v[0].size(static_cast<std::int64_t>(d));
        return reshape(v[0], s);
      };
    } else if (op == "Transpose") {
      const std::vector<std::int64_t> perm = at.integers("perm");
      step->fn = [perm](const Inputs& v) {
        std::vector<std::int64_t> order = perm;
        if (order.empty())
          for (std::int64_t d = v[0].dim(); d-- > 0;) order.push_back(d);
        return permute(v[0], order);
      };
    } else if (op == "Pad") {
      if (at.text("mode", "constant") != "constant")
        at.refuse("mode '" + at.text("mode", "") + "' is not supported (constant only)");
      std::vector<std::int64_t> pads = opset < 11 ? at.integers("pads") : ints(at, node, 1);
      const float value = opset < 11 ? at.real("value", 0.f) : scalar(at, node, 2, 0.f);
      if (has_input(node, 3)) at.refuse("the axes input is not supported");
      step->inputs.resize(1);
      step->fn = [pads, value, at = at.node()](const Inputs& v) {
        const auto rank = static_cast<std::size_t>(v[0].dim());
        if (pads.size() != 2 * rank)
          at.refuse(std::to_string(pads.size()) + " pads for " + shape_str(v[0].shape()));
        return pad(
            v[0],
            std::vector<std::int64_t>(pads.begin(),
                                      pads.begin() + static_cast<std::ptrdiff_t>(rank)),
            std::vector<std::int64_t>(pads.begin() + static_cast<std::ptrdiff_t>(rank), pads.end()),
            value);
      };
    } else if (op == "Concat") {
      const std::int64_t axis = at.integer("axis", 1);
      step->fn = [axis](const Inputs& v) { return concat(v, axis); };
    } else if (op == "ReduceSum" || op == "ReduceMean" || op == "ReduceSumSquare" ||
               op == "ReduceMax") {
      const Reduction how = op == "ReduceMean"        ? Reduction::Mean
                            : op == "ReduceMax"       ? Reduction::Max
                            : op == "ReduceSumSquare" ? Reduction::SumSquare
                                                      : Reduction::Sum;
      std::vector<std::int64_t> axes = at.integers("axes");
      if (op == "ReduceSum" && opset >= 13) {
        axes = has_input(node, 1) ? ints(at, node, 1) : std::vector<std::int64_t>{};
        step->inputs.resize(1);
      }
      const bool keep = at.integer("keepdims", 1) != 0;
      const bool noop = axes.empty() && at.integer("noop_with_empty_axes", 0) != 0;
      step->fn = [axes, keep, how, noop](const Inputs& v) {
        return noop ? v[0] : reduce(v[0], axes, keep, how);
      };
    } else if (op == "Constant") {
      const ::onnx::TensorProto* value = at.tensor("value");
      if (value == nullptr) at.refuse("only the 'value' attribute is supported");
      if (is_integer_tensor(*value)) {
        integers[node.output(0)] = integers_from_proto(path, *value);
      } else {
        floats[node.output(0)] = tensor_from_proto(path, *value);
      }
      model->info_.push_back(std::move(info));
      continue;
    } else if (op == "Identity" && initializers.count(node.input(0))) {
      // PyTorch exports a parameter equal to another as an Identity of it: a weight, not a step.
      initializers[node.output(0)] = initializers.at(node.input(0));
      model->info_.push_back(std::move(info));
      continue;
    } else if (op == "Identity" || op == "Dropout") {
      if (op == "Dropout" && node.output_size() > 1) at.refuse("the mask output is not supported");
      step->inputs.resize(1);
      step->fn = [](const Inputs& v) { return v[0]; };
    } else {
      std::string list;
      for (const std::string& s : supported_ops()) list += (list.empty() ? "" : ", ") + s;
      at.refuse("op type " + op + " (opset " + std::to_string(opset) +
                ") is not supported; supported: " + list);
    }
    step->path = scope_of(node.name());
    step->node = model->info_.size();
    model->info_.push_back(std::move(info));
    model->steps_.push_back(std::move(step));
  }
  // Initializers a step reads as data (an Add of a constant, say).
  for (const auto& step : model->steps_)
    for (const std::string& name : step->inputs) {
      if (name.empty() || floats.count(name)) continue;
      if (const auto it = initializers.find(name); it != initializers.end())
        floats.emplace(name, tensor_from_proto(path, *it->second));
    }
  model->constants_ = std::move(floats);
  // Each scope runs after the last node under it; nested scopes end together innermost first.
  for (const auto& [scope_path, scope] : scopes) {
    const std::string prefix = scope_path + ".";
    for (std::size_t i = model->steps_.size(); i-- > 0;) {
      const std::string& at = model->steps_[i]->path;
      if (at == scope_path || at.rfind(prefix, 0) == 0) {
        model->steps_[i]->scopes_after.emplace_back(scope_path, scope.get());
        break;
      }
    }
  }
  for (const auto& step : model->steps_)
    for (const std::string& name : step->inputs) ++model->readers_[name];
  for (const auto& step : model->steps_)
    std::sort(step->scopes_after.begin(),
              step->scopes_after.end(),
              [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  return model;
}

void OnnxModel::load_weights(const std::map<std::string, Tensor>& state) {
  // Everything is checked before anything changes, so a bad file leaves the model as it was.
  std::map<std::string, Tensor> parameters_only;
  std::set<std::string> used;
  for (const nn::Parameter& p : parameters()) {
    if (const auto it = state.find(p.name); it != state.end()) {
      parameters_only.emplace(p.name, it->second);
      used.insert(p.name);
    }
  }
  std::vector<std::pair<BatchNormNode*, std::pair<Tensor, Tensor>>> statistics;
  for (const auto& [path, module] : batch_norms_) {
    auto* bn = static_cast<BatchNormNode*>(module);
    const auto mean = state.find(path + ".running_mean"), var = state.find(path + ".running_var");
    if (mean == state.end() && var == state.end()) continue;
    for (const auto& [name, it] : {std::pair{std::string(".running_mean"), mean},
                                   std::pair{std::string(".running_var"), var}}) {
      GRADLENS_CHECK(it != state.end(), "[onnx] load_weights: missing tensor '", path, name, "'");
      GRADLENS_CHECK(it->second.shape() == Shape{bn->channels()},
                     "[onnx] load_weights: tensor '",
                     path,
                     name,
                     "' has shape ",
                     shape_str(it->second.shape()),
                     ", the model expects [",
                     bn->channels(),
                     "]");
      used.insert(path + name);
    }
    statistics.push_back({bn, {mean->second, var->second}});
  }
  for (const auto& [name, tensor] : state) {
    const bool counter = name.size() > 20 && name.rfind(".num_batches_tracked") == name.size() - 20;
    GRADLENS_CHECK(used.count(name) || counter,
                   "[onnx] load_weights: unexpected tensor '",
                   name,
                   "' ",
                   shape_str(tensor.shape()),
                   " (no parameter or BatchNorm statistic of the model has that name)");
  }
  load_state_dict(parameters_only);  // checks that every parameter is there, then copies
  for (auto& [bn, stats] : statistics)
    bn->set_statistics(stats.first.to_vector(), stats.second.to_vector());
  for (const auto& [path, module] : batch_norms_) static_cast<BatchNormNode*>(module)->refold();
}

std::size_t OnnxModel::fold_batch_norms() {
  std::map<std::string, ConvNode*> conv_output;
  std::size_t folded = 0;
  for (const auto& step : steps_) {
    if (auto* conv = dynamic_cast<ConvNode*>(step->module)) {
      if (conv->folded_bn == nullptr) conv_output[step->outputs[0]] = conv;
      continue;
    }
    auto* bn = dynamic_cast<BatchNormNode*>(step->module);
    if (bn == nullptr || bn->folded) continue;
    const std::string& in = step->inputs[0];
    const auto it = conv_output.find(in);
    // Only a conv whose output nothing else reads: folding changes that output.
    if (it == conv_output.end() || readers_[in] != 1 || in == output_ ||
        it->second->weight.size(0) != bn->channels())
      continue;
    it->second->folded_bn = bn;
    bn->folded = true;
    ++folded;
  }
  return folded;
}

bool OnnxModel::read_once(const std::string& name) const {
  const auto it = readers_.find(name);
  return it != readers_.end() && it->second == 1 && name != output_;
}

// `to`, a module step, is the only reader of `from`'s output, as its first input, and no scope
// ends between them.
bool OnnxModel::feeds_only(const Step& from, const Step& to) const {
  return from.scopes_after.empty() && to.module != nullptr && to.inputs[0] == from.outputs[0] &&
         read_once(from.outputs[0]);
}

namespace {

// A Relu step whose module nothing hooks: a fusion may run it inside the op before it.
bool unwatched_relu(const OnnxModel::Step& step) {
  const auto* act = dynamic_cast<const ActivationNode*>(step.module);
  return act != nullptr && act->is_relu && !act->has_forward_hooks();
}

}  // namespace

// The steps after steps_[i] that a following ReLU can be fused into: a Conv, then optionally its
// folded BatchNorm (an identity), then a Relu; or an unfolded BatchNorm, then a Relu. Each output
// read only by the next, no module hooked and no scope ending in between; and only while no
// backward rule is active (DeepLift and its kin must see the ReLU). 0 when they cannot.
std::size_t OnnxModel::fusable_relu_after(std::size_t i) const {
  if (trace_ != nullptr || any_backward_override()) return 0;
  const Step& first = *steps_[i];
  const auto* conv = dynamic_cast<const ConvNode*>(first.module);
  const auto* norm = dynamic_cast<const BatchNormNode*>(first.module);
  if (conv == nullptr && (norm == nullptr || norm->folded)) return 0;
  if (first.module->has_forward_hooks()) return 0;
  std::size_t k = i + 1;
  if (conv != nullptr && k < steps_.size()) {
    const auto* bn = dynamic_cast<const BatchNormNode*>(steps_[k]->module);
    if (bn != nullptr && bn->folded && !bn->has_forward_hooks() && feeds_only(first, *steps_[k])) {
      ++k;
    } else if (bn != nullptr) {
      return 0;
    }
  }
  if (k >= steps_.size() || !feeds_only(*steps_[k - 1], *steps_[k])) return 0;
  return unwatched_relu(*steps_[k]) ? k - i : 0;
}

// A residual block's tail after steps_[i]: an unfolded BatchNorm whose output only an Add reads
// (the next step), then optionally a Relu that alone reads the sum; no hook on any of them (the
// scopes ending at the BatchNorm may pass over only if none of them is hooked either) and no
// backward rule active. Returns how many steps follow the BatchNorm in the fusion (0: none) and
// the Add's other operand in `other`.
std::size_t OnnxModel::fusable_residual_after(std::size_t i, std::string* other) const {
  if (trace_ != nullptr || any_backward_override() || i + 1 >= steps_.size()) return 0;
  const Step& first = *steps_[i];
  const auto* norm = dynamic_cast<const BatchNormNode*>(first.module);
  if (norm == nullptr || norm->folded || norm->has_forward_hooks()) return 0;
  for (const auto& [path, scope] : first.scopes_after) {
    if (scope->has_forward_hooks()) return 0;
  }
  const std::string& name = first.outputs[0];
  if (!read_once(name)) return 0;
  const Step& add = *steps_[i + 1];
  if (add.module != nullptr || info_[add.node].op_type != "Add" || add.inputs.size() != 2 ||
      (add.inputs[0] == name) == (add.inputs[1] == name)) {
    return 0;
  }
  *other = add.inputs[0] == name ? add.inputs[1] : add.inputs[0];
  const bool relu_next =
      i + 2 < steps_.size() && feeds_only(add, *steps_[i + 2]) && unwatched_relu(*steps_[i + 2]);
  return relu_next ? 2 : 1;
}

Tensor OnnxModel::forward(const Tensor& x) {
  std::map<std::string, Tensor> values;
  values[input_] = x;
  auto value = [&](const std::string& name) -> Tensor {
    if (name.empty()) return {};  // an optional input left out
    if (const auto it = values.find(name); it != values.end()) return it->second;
    if (auto it = constants_.find(name); it != constants_.end()) {
      if (it->second.device() != x.device()) it->second = it->second.to(x.device());
      return it->second;
    }
    throw std::runtime_error("[onnx] the graph reads '" + name + "' before any node writes it");
  };
  for (std::size_t i = 0; i < steps_.size(); ++i) {
    const auto& step = steps_[i];
    std::string other;
    if (const std::size_t skip = fusable_residual_after(i, &other); skip > 0) {
      // BatchNorm, the residual add (and its ReLU) in one pass, when the sum needs no
      // broadcasting; the BatchNorm's and the Add's outputs are read by nothing else.
      const Tensor& in = value(step->inputs[0]);
      const Tensor addend = value(other);
      if (addend.shape() == in.shape()) {
        Tensor out =
            static_cast<BatchNormNode*>(step->module)->forward_residual(in, addend, skip == 2);
        i += skip;
        for (const auto& [path, scope] : steps_[i]->scopes_after) out = (*scope)(out);
        values[steps_[i]->outputs[0]] = out;
        continue;
      }
    }
    if (const std::size_t skip = fusable_relu_after(i); skip > 0) {
      // relu(conv) or relu(BatchNorm) in one kernel: the ReLU's forward in its epilogue, its mask
      // in the backward's prologue; the skipped steps' outputs are read by nothing else.
      const Tensor& in = value(step->inputs[0]);
      auto* conv = dynamic_cast<ConvNode*>(step->module);
      Tensor out = conv != nullptr ? conv->forward_relu(in)
                                   : static_cast<BatchNormNode*>(step->module)->forward_relu(in);
      i += skip;
      for (const auto& [path, scope] : steps_[i]->scopes_after) out = (*scope)(out);
      values[steps_[i]->outputs[0]] = out;
      continue;
    }
    Tensor out;
    if (step->module != nullptr) {
      out = (*step->module)(value(step->inputs[0]));
    } else {
      std::vector<Tensor> in;
      in.reserve(step->inputs.size());
      for (const std::string& name : step->inputs) in.push_back(value(name));
      out = step->fn(in);
    }
    for (const auto& [path, scope] : step->scopes_after) out = (*scope)(out);
    if (trace_ != nullptr) {
      std::int64_t flops = 0;
      if (const auto* conv = dynamic_cast<const ConvNode*>(step->module)) {
        flops = 2 * out.numel() * conv->weight.numel() / conv->weight.size(0);
      } else if (const auto* deconv = dynamic_cast<const ConvTransposeNode*>(step->module)) {
        const Tensor& in = value(step->inputs[0]);
        flops = 2 * in.numel() * deconv->weight.numel() / deconv->weight.size(0);
      } else if (const auto* gemm = dynamic_cast<const GemmNode*>(step->module)) {
        flops = 2 * out.numel() * gemm->weight.size(1);
      } else if (info_[step->node].op_type == "MatMul" || info_[step->node].op_type == "Gemm") {
        flops = 2 * out.numel() * value(step->inputs[0]).size(-1);
      }
      if (!trace_->empty() && trace_->back().node == step->node) {
        trace_->back().output = out.shape();  // Gemm's bias step: the node's final output
        trace_->back().flops += flops;
      } else {
        trace_->push_back({step->node, out.shape(), flops});
      }
    }
    values[step->outputs[0]] = out;
  }
  return value(output_);
}

std::vector<OnnxModel::NodeTrace> OnnxModel::trace(const Tensor& x) {
  std::vector<NodeTrace> result;
  NoGradGuard no_grad;
  trace_ = &result;
  try {
    (*this)(x);
  } catch (...) {
    trace_ = nullptr;
    throw;
  }
  trace_ = nullptr;
  return result;
}

}  // namespace gradlens::onnx
