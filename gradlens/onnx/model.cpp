// The graph runs node by node in the file's (topological) order, each node on gradlens ops; nodes
// with weights, and ReLUs, are child modules named after the PyTorch module they were exported
// from, so hooks, layer methods and state_dict names work as on a hand-written Module.
#include "gradlens/onnx/model.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <stdexcept>

#include "gradlens/autograd/error.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/data/file.h"

namespace gradlens::onnx {

namespace {

constexpr std::size_t kMaxModelBytes = std::size_t{2} << 30;  // protobuf's own limit

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

Tensor to_tensor(const std::string& path, const ::onnx::TensorProto& t) {
  if (t.data_type() != ::onnx::TensorProto::FLOAT)
    fail(path,
         "initializer '" + t.name() + "' has data type " + std::to_string(t.data_type()) +
             "; only float32 (1) is read");
  Shape shape(t.dims().begin(), t.dims().end());
  std::int64_t count = 1;
  for (const std::int64_t d : shape) {
    if (d < 0 || (d > 0 && count > (std::int64_t{1} << 40) / d))
      fail(path, "initializer '" + t.name() + "' has a bad shape " + shape_str(shape));
    count *= d;
  }
  std::vector<float> values(static_cast<std::size_t>(count));
  if (t.has_raw_data()) {
    if (t.raw_data().size() != values.size() * sizeof(float))
      fail(path,
           "initializer '" + t.name() + "' " + shape_str(shape) + " holds " +
               std::to_string(t.raw_data().size()) + " bytes, expected " +
               std::to_string(values.size() * sizeof(float)));
    std::memcpy(values.data(), t.raw_data().data(), t.raw_data().size());
  } else {
    if (t.float_data_size() != count)
      fail(path,
           "initializer '" + t.name() + "' " + shape_str(shape) + " holds " +
               std::to_string(t.float_data_size()) + " floats");
    std::copy(t.float_data().begin(), t.float_data().end(), values.begin());
  }
  return Tensor::from_vector(values, shape);
}

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
  [[noreturn]] void refuse(const std::string& what) const {
    fail(path_, "node '" + node_.name() + "' (" + node_.op_type() + "): " + what);
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

// Square kernels with one stride and one symmetric padding for H and W: the conv2d and max_pool2d
// ops' geometry. Anything else is refused by name.
struct Geometry {
  std::int64_t kernel = 1, stride = 1, padding = 0;
};

Geometry square_geometry(const Attributes& at, std::int64_t kernel_h, std::int64_t kernel_w) {
  Geometry g;
  if (kernel_h != kernel_w)
    at.refuse("kernel " + std::to_string(kernel_h) + "x" + std::to_string(kernel_w) +
              " is not square");
  g.kernel = kernel_h;
  const auto strides = at.integers("strides");
  if (!strides.empty()) {
    if (strides.size() != 2 || strides[0] != strides[1])
      at.refuse("strides must be one number for H and W");
    g.stride = strides[0];
  }
  const auto pads = at.integers("pads");
  if (!pads.empty()) {
    if (pads.size() != 4 || pads[0] != pads[1] || pads[0] != pads[2] || pads[0] != pads[3])
      at.refuse("pads must be one symmetric number for H and W");
    g.padding = pads[0];
  }
  for (const std::int64_t d : at.integers("dilations"))
    if (d != 1) at.refuse("dilations other than 1 are not supported");
  if (at.text("auto_pad", "NOTSET") != "NOTSET") at.refuse("auto_pad is not supported");
  return g;
}

class ConvNode : public nn::Module {
 public:
  ConvNode(Tensor w, Tensor b, Geometry g) : geometry(g) {
    weight = register_parameter("weight", std::move(w));
    if (b.defined()) bias = register_parameter("bias", std::move(b));
  }
  Tensor weight, bias;
  Geometry geometry;

 protected:
  Tensor forward(const Tensor& x) override {
    return conv2d(x, weight, bias, geometry.stride, geometry.padding);
  }
};

// Inference BatchNormalization as y = x * scale + shift per channel, folded once from the running
// statistics (in double): linear, so DeepLift and LRP treat it as such.
class BatchNormNode : public nn::Module {
 public:
  BatchNormNode(Tensor gamma, Tensor beta, const Tensor& mean, const Tensor& var, float eps) {
    weight = register_parameter("weight", std::move(gamma));
    bias = register_parameter("bias", std::move(beta));
    const auto g = weight.to_vector(), b = bias.to_vector(), m = mean.to_vector(),
               v = var.to_vector();
    std::vector<float> scale(g.size()), shift(g.size());
    for (std::size_t c = 0; c < g.size(); ++c) {
      const double s = g[c] / std::sqrt(static_cast<double>(v[c]) + static_cast<double>(eps));
      scale[c] = static_cast<float>(s);
      shift[c] = static_cast<float>(b[c] - m[c] * s);
    }
    const std::int64_t channels = static_cast<std::int64_t>(g.size());
    scale_ = Tensor::from_vector(scale, {1, channels, 1, 1});
    shift_ = Tensor::from_vector(shift, {1, channels, 1, 1});
  }
  Tensor weight, bias;

 protected:
  Tensor forward(const Tensor& x) override {
    if (scale_.device() != x.device()) {
      scale_ = scale_.to(x.device());
      shift_ = shift_.to(x.device());
    }
    return add(mul(x, scale_), shift_);
  }

 private:
  Tensor scale_, shift_;
};

class GemmNode : public nn::Module {
 public:
  GemmNode(Tensor w, Tensor b) {
    weight = register_parameter("weight", std::move(w));
    if (b.defined()) bias = register_parameter("bias", std::move(b));
  }
  Tensor weight, bias;

 protected:
  Tensor forward(const Tensor& x) override { return linear(x, weight, bias); }
};

class ReluNode : public nn::Module {
 protected:
  Tensor forward(const Tensor& x) override { return relu(x); }
};

class MaxPoolNode : public nn::Module {
 public:
  explicit MaxPoolNode(Geometry g) : geometry(g) {}
  Geometry geometry;

 protected:
  Tensor forward(const Tensor& x) override {
    return max_pool2d(x, geometry.kernel, geometry.stride, geometry.padding);
  }
};

// A module path's inner levels ("layer2" of "layer2.conv1"): it holds children and is never run.
class Scope : public nn::Module {
 public:
  using nn::Module::register_module;
  Module* child(const std::string& name) { return find(name); }

 protected:
  Tensor forward(const Tensor&) override {
    throw std::logic_error("[onnx] a module scope of an imported graph is not run by itself");
  }
};

}  // namespace

enum class Kind { Module, Add, GlobalAveragePool, Flatten, Identity };

struct OnnxModel::Step {
  Kind kind = Kind::Identity;
  nn::Module* module = nullptr;  // Kind::Module: the child that runs it
  std::vector<std::string> inputs, outputs;
  std::int64_t axis = 1;  // Flatten
};

OnnxModel::OnnxModel() = default;
OnnxModel::~OnnxModel() = default;

std::vector<std::string> supported_ops() {
  return {"Conv",
          "BatchNormalization",
          "Relu",
          "MaxPool",
          "Gemm",
          "Add",
          "GlobalAveragePool",
          "Flatten",
          "Identity",
          "Dropout"};
}

std::unique_ptr<OnnxModel> OnnxModel::load(const std::string& path) {
  const std::string bytes = data::read_regular_file(path, kMaxModelBytes, "onnx");
  ::onnx::ModelProto proto;
  if (!proto.ParseFromString(bytes)) fail(path, "not an ONNX model (the protobuf does not parse)");
  std::unique_ptr<OnnxModel> model(new OnnxModel());
  for (const auto& op : proto.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") model->opset_ = op.version();
  const ::onnx::GraphProto& graph = proto.graph();

  std::map<std::string, const ::onnx::TensorProto*> initializers;
  for (const auto& t : graph.initializer()) initializers[t.name()] = &t;
  std::vector<std::string> data_inputs;
  for (const auto& in : graph.input())
    if (!initializers.count(in.name())) data_inputs.push_back(in.name());
  if (data_inputs.size() != 1 || graph.output_size() != 1)
    fail(path,
         "the graph has " + std::to_string(data_inputs.size()) + " data inputs and " +
             std::to_string(graph.output_size()) + " outputs; one of each is supported");
  model->input_ = data_inputs[0];
  model->output_ = graph.output(0).name();

  std::map<std::string, std::shared_ptr<Scope>> scopes;  // "layer2" -> its scope module
  std::set<std::string> used_paths;
  // Registers `module` at the dotted `module_path`, making the scopes above it.
  auto place = [&](const std::string& module_path, std::shared_ptr<nn::Module> module) {
    std::string name = module_path;
    for (int k = 2; name.empty() || used_paths.count(name); ++k)
      name = (module_path.empty() ? "node" : module_path) + "_" + std::to_string(k);
    used_paths.insert(name);
    const std::size_t dot = name.rfind('.');
    if (dot == std::string::npos) {
      model->register_module(name, module);
      return module.get();
    }
    // The parent scope, created level by level.
    std::string parent_path = name.substr(0, dot);
    std::shared_ptr<Scope> parent;
    std::string built;
    std::size_t start = 0;
    while (start <= parent_path.size()) {
      const std::size_t end = std::min(parent_path.find('.', start), parent_path.size());
      const std::string level = parent_path.substr(start, end - start);
      const std::string full = built.empty() ? level : built + "." + level;
      auto it = scopes.find(full);
      if (it == scopes.end()) {
        auto scope = std::make_shared<Scope>();
        if (parent)
          parent->register_module(level, scope);
        else
          model->register_module(level, scope);
        it = scopes.emplace(full, scope).first;
      }
      parent = it->second;
      built = full;
      start = end + 1;
    }
    parent->register_module(name.substr(dot + 1), module);
    return module.get();
  };
  auto weight = [&](const Attributes& at, const ::onnx::NodeProto& node, int i) -> Tensor {
    if (node.input_size() <= i || node.input(i).empty()) return {};
    const auto it = initializers.find(node.input(i));
    if (it == initializers.end())
      at.refuse("input " + std::to_string(i) + " ('" + node.input(i) +
                "') must be an initializer (a weight in the file)");
    return to_tensor(path, *it->second);
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
    if (op == "Conv") {
      const Tensor w = weight(at, node, 1);
      if (!w.defined() || w.dim() != 4) at.refuse("needs a 4-d weight initializer");
      if (at.integer("group", 1) != 1) at.refuse("group other than 1 is not supported");
      const Geometry g = square_geometry(at, w.size(2), w.size(3));
      info.module_path = module_of_weight(node.input(1));
      step->kind = Kind::Module;
      step->module = place(info.module_path, std::make_shared<ConvNode>(w, weight(at, node, 2), g));
    } else if (op == "BatchNormalization") {
      if (node.input_size() != 5) at.refuse("needs scale, bias, mean and variance");
      if (at.integer("training_mode", 0) != 0) at.refuse("training_mode is not supported");
      info.module_path = module_of_weight(node.input(1));
      step->kind = Kind::Module;
      step->module = place(info.module_path,
                           std::make_shared<BatchNormNode>(weight(at, node, 1),
                                                           weight(at, node, 2),
                                                           weight(at, node, 3),
                                                           weight(at, node, 4),
                                                           at.real("epsilon", 1e-5f)));
      step->inputs.resize(1);
    } else if (op == "Gemm") {
      Tensor w = weight(at, node, 1);
      if (!w.defined() || w.dim() != 2) at.refuse("needs a 2-d weight initializer");
      if (at.integer("transA", 0) != 0) at.refuse("transA is not supported");
      if (at.real("alpha", 1.f) != 1.f || at.real("beta", 1.f) != 1.f)
        at.refuse("alpha and beta other than 1 are not supported");
      if (at.integer("transB", 0) == 0)
        at.refuse("transB 0 (a [in, out] weight) is not supported yet");
      info.module_path = module_of_weight(node.input(1));
      step->kind = Kind::Module;
      step->module = place(info.module_path, std::make_shared<GemmNode>(w, weight(at, node, 2)));
    } else if (op == "Relu") {
      step->kind = Kind::Module;
      step->module = place(info.module_path, std::make_shared<ReluNode>());
    } else if (op == "MaxPool") {
      const auto kernel = at.integers("kernel_shape");
      if (kernel.size() != 2) at.refuse("kernel_shape must have 2 numbers");
      if (at.integer("ceil_mode", 0) != 0) at.refuse("ceil_mode is not supported");
      if (node.output_size() > 1) at.refuse("the indices output is not supported");
      step->kind = Kind::Module;
      step->module =
          place(info.module_path,
                std::make_shared<MaxPoolNode>(square_geometry(at, kernel[0], kernel[1])));
    } else if (op == "Add") {
      step->kind = Kind::Add;
    } else if (op == "GlobalAveragePool") {
      step->kind = Kind::GlobalAveragePool;
    } else if (op == "Flatten") {
      step->kind = Kind::Flatten;
      step->axis = at.integer("axis", 1);
      if (step->axis != 1) at.refuse("axis other than 1 is not supported");
    } else if (op == "Identity" && initializers.count(node.input(0))) {
      // PyTorch exports a parameter equal to another as an Identity of it: a weight, not a step.
      initializers[node.output(0)] = initializers.at(node.input(0));
      model->info_.push_back(std::move(info));
      continue;
    } else if (op == "Identity" || op == "Dropout") {
      step->kind = Kind::Identity;
      step->outputs.resize(1);
    } else {
      at.refuse("op type " + op + " (opset " + std::to_string(model->opset_) +
                ") is not supported; supported: Conv, BatchNormalization, Relu, MaxPool, Gemm, "
                "Add, GlobalAveragePool, Flatten, Identity, Dropout");
    }
    if (step->kind == Kind::Module && step->inputs.size() > 1) step->inputs.resize(1);
    model->info_.push_back(std::move(info));
    model->steps_.push_back(std::move(step));
  }
  // Initializers a step reads as data (an Add of a constant, say).
  for (const auto& step : model->steps_)
    for (const std::string& name : step->inputs)
      if (initializers.count(name) && !model->constants_.count(name))
        model->constants_.emplace(name, to_tensor(path, *initializers.at(name)));
  return model;
}

Tensor OnnxModel::forward(const Tensor& x) {
  std::map<std::string, Tensor> values;
  values[input_] = x;
  auto value = [&](const std::string& name) -> const Tensor& {
    if (const auto it = values.find(name); it != values.end()) return it->second;
    if (auto it = constants_.find(name); it != constants_.end()) {
      if (it->second.device() != x.device()) it->second = it->second.to(x.device());
      return it->second;
    }
    throw std::runtime_error("[onnx] the graph reads '" + name + "' before any node writes it");
  };
  for (const auto& step : steps_) {
    Tensor out;
    switch (step->kind) {
      case Kind::Module:
        out = (*step->module)(value(step->inputs[0]));
        break;
      case Kind::Add:
        out = add(value(step->inputs[0]), value(step->inputs[1]));
        break;
      case Kind::GlobalAveragePool: {
        const Tensor& in = value(step->inputs[0]);
        GRADLENS_CHECK(in.dim() == 4,
                       "[onnx] GlobalAveragePool expects [N, C, H, W], got ",
                       shape_str(in.shape()));
        const Tensor flat = reshape(in, {in.size(0), in.size(1), in.size(2) * in.size(3)});
        out = reshape(mean_dim(flat, 2), {in.size(0), in.size(1), 1, 1});
        break;
      }
      case Kind::Flatten: {
        const Tensor& in = value(step->inputs[0]);
        out = reshape(in, {in.size(0), in.numel() / std::max<std::int64_t>(1, in.size(0))});
        break;
      }
      case Kind::Identity:
        out = value(step->inputs[0]);
        break;
    }
    values[step->outputs[0]] = out;
  }
  return value(output_);
}

}  // namespace gradlens::onnx
