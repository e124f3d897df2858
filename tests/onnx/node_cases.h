// ONNX's backend node tests (Debian's libonnx-testdata) as cases for the importer: the CPU suite
// (tests/onnx/test_onnx_node_suite.cpp) checks them against ONNX's outputs, the GPU suite runs the
// same models on the device against the CPU.
#pragma once

#if GRADLENS_WITH_ONNX

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gradlens/autograd/tensor.h"
#include "gradlens/onnx/model.h"

namespace onnx {
class ModelProto;
class NodeProto;
}  // namespace onnx

namespace gradlens::testing {

/// The node tests' folder: $GRADLENS_SHARED_DIR/onnx-node when a GPU bundle carries them
/// (tools/gpu_bundle.sh), else Debian's /usr/share/libonnx-testdata/data/node.
std::string onnx_node_test_dir();

/// The op families of a CNN (the count), and the activations and layout ops imported too.
extern const std::vector<std::string> kCnnNodeFamilies, kOtherNodeFamilies;

/// The case folders of `families` ("conv" takes test_conv and test_conv_*), sorted by name.
std::vector<std::filesystem::path> onnx_node_cases(const std::vector<std::string>& families);

struct OnnxNodeCase {
  std::string name;
  std::string unsupported;  // why the engine cannot run it; empty when it loaded
  std::unique_ptr<onnx::OnnxModel> model;
  Tensor input, expected;  // input_0 and output_0 of test_data_set_0
};

/// A graph built in a test: one data input "x", one output "y", opset 13; nodes and initializers
/// are added to it, then parse() makes the model.
struct OnnxGraphBuilder {
  OnnxGraphBuilder();
  /// A float initializer (a weight) with the values of t.
  void add_initializer(const std::string& name, const Tensor& t);
  /// A node reading `inputs` and writing `output`, named "/" + op.
  ::onnx::NodeProto* add_node(const std::string& op,
                              const std::vector<std::string>& inputs,
                              const std::string& output);
  /// The model; `name` names it in errors.
  std::unique_ptr<onnx::OnnxModel> parse(const std::string& name) const;

  std::shared_ptr<::onnx::ModelProto> proto;
};

/// One case, its inputs after the first made initializers (as a model's weights are); a model the
/// importer refuses, or data it cannot express, comes back with `unsupported` set.
OnnxNodeCase load_onnx_node_case(const std::filesystem::path& dir);

}  // namespace gradlens::testing

#endif  // GRADLENS_WITH_ONNX
