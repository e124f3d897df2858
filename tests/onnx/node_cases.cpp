#include "tests/onnx/node_cases.h"

#if GRADLENS_WITH_ONNX

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace gradlens::testing {

namespace fs = std::filesystem;

const std::vector<std::string> kCnnNodeFamilies = {"conv",
                                                   "basic_conv",
                                                   "convtranspose",
                                                   "convinteger",
                                                   "basic_convinteger",
                                                   "maxpool",
                                                   "averagepool",
                                                   "globalaveragepool",
                                                   "relu",
                                                   "gemm",
                                                   "matmul",
                                                   "matmulinteger",
                                                   "add",
                                                   "sub",
                                                   "mul",
                                                   "div",
                                                   "softmax",
                                                   "logsoftmax",
                                                   "flatten",
                                                   "reshape",
                                                   "concat",
                                                   "batchnorm",
                                                   "sum",
                                                   "reduce_sum",
                                                   "reduce_mean"};
const std::vector<std::string> kOtherNodeFamilies = {"transpose",
                                                     "sigmoid",
                                                     "tanh",
                                                     "leakyrelu",
                                                     "clip",
                                                     "constant_pad",
                                                     "exp",
                                                     "log",
                                                     "identity",
                                                     "dropout"};

namespace {

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

::onnx::TensorProto read_tensor(const fs::path& path) {
  ::onnx::TensorProto t;
  if (!t.ParseFromString(read_bytes(path)))
    throw std::runtime_error("cannot parse " + path.string());
  return t;
}

Tensor to_gradlens(const ::onnx::TensorProto& t) {
  std::vector<float> v;
  if (t.has_raw_data()) {
    v.resize(t.raw_data().size() / sizeof(float));
    if (!v.empty()) std::memcpy(v.data(), t.raw_data().data(), t.raw_data().size());
  } else {
    v.assign(t.float_data().begin(), t.float_data().end());
  }
  return Tensor::from_vector(v, Shape(t.dims().begin(), t.dims().end()));
}

}  // namespace

std::string onnx_node_test_dir() {
  const char* shared = std::getenv("GRADLENS_SHARED_DIR");
  if (shared != nullptr && *shared && fs::is_directory(fs::path(shared) / "onnx-node"))
    return (fs::path(shared) / "onnx-node").string();
  return "/usr/share/libonnx-testdata/data/node";
}

std::vector<fs::path> onnx_node_cases(const std::vector<std::string>& families) {
  std::vector<fs::path> cases;
  for (const auto& entry : fs::directory_iterator(onnx_node_test_dir())) {
    const std::string name = entry.path().filename().string();
    const bool wanted = std::any_of(families.begin(), families.end(), [&](const std::string& f) {
      const std::string base = "test_" + f;
      return name == base || name.rfind(base + "_", 0) == 0;
    });
    if (wanted) cases.push_back(entry.path());
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

OnnxGraphBuilder::OnnxGraphBuilder() : proto(std::make_shared<::onnx::ModelProto>()) {
  proto->add_opset_import()->set_version(13);
  proto->mutable_graph()->add_input()->set_name("x");
  proto->mutable_graph()->add_output()->set_name("y");
}

void OnnxGraphBuilder::add_initializer(const std::string& name, const Tensor& t) {
  ::onnx::TensorProto* init = proto->mutable_graph()->add_initializer();
  init->set_name(name);
  init->set_data_type(::onnx::TensorProto::FLOAT);
  for (const std::int64_t d : t.shape()) init->add_dims(d);
  for (const float v : t.to_vector()) init->add_float_data(v);
}

::onnx::NodeProto* OnnxGraphBuilder::add_node(const std::string& op,
                                              const std::vector<std::string>& inputs,
                                              const std::string& output) {
  ::onnx::NodeProto* node = proto->mutable_graph()->add_node();
  node->set_name("/" + op);
  node->set_op_type(op);
  for (const std::string& in : inputs) node->add_input(in);
  node->add_output(output);
  return node;
}

std::unique_ptr<onnx::OnnxModel> OnnxGraphBuilder::parse(const std::string& name) const {
  std::string bytes;
  proto->SerializeToString(&bytes);
  return onnx::OnnxModel::parse(bytes, name);
}

OnnxNodeCase load_onnx_node_case(const fs::path& dir) {
  OnnxNodeCase c;
  c.name = dir.filename().string();
  ::onnx::ModelProto model;
  if (!model.ParseFromString(read_bytes(dir / "model.onnx")))
    throw std::runtime_error(c.name + ": model.onnx does not parse");
  const fs::path data = dir / "test_data_set_0";
  ::onnx::GraphProto* graph = model.mutable_graph();
  const auto unsupported = [&c](std::string why) {
    c.unsupported = std::move(why);
    return std::move(c);
  };
  if (graph->output_size() != 1)
    return unsupported(std::to_string(graph->output_size()) + " outputs");
  for (int i = 0; i < graph->input_size(); ++i) {
    if (!graph->input(i).type().has_tensor_type())
      return unsupported("an input that is not a tensor (a sequence or optional)");
    ::onnx::TensorProto t = read_tensor(data / ("input_" + std::to_string(i) + ".pb"));
    t.set_name(graph->input(i).name());
    if (i > 0) {
      *graph->add_initializer() = t;
      continue;
    }
    if (t.data_type() != ::onnx::TensorProto::FLOAT)
      return unsupported("input of data type " + std::to_string(t.data_type()));
    c.input = to_gradlens(t);
  }
  const ::onnx::TensorProto expected = read_tensor(data / "output_0.pb");
  if (expected.data_type() != ::onnx::TensorProto::FLOAT)
    return unsupported("output of data type " + std::to_string(expected.data_type()));
  c.expected = to_gradlens(expected);
  try {
    std::string bytes;
    model.SerializeToString(&bytes);
    c.model = onnx::OnnxModel::parse(bytes, "model.onnx");
  } catch (const std::exception& e) {
    std::string why = e.what();  // "[onnx] model.onnx: node 'n' (Op): why" -> why
    if (const auto at = why.find("): "); at != std::string::npos) why = why.substr(at + 3);
    return unsupported(why);
  }
  return c;
}

}  // namespace gradlens::testing

#endif  // GRADLENS_WITH_ONNX
