// ONNX import: a model exported by torch.onnx.export (or any ONNX file of the supported ops) as a
// Module that runs the graph with gradlens ops, so every attribution method runs on it. Read with
// Debian's ONNX library; the weights are the file's initializers.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gradlens/export.h"
#include "gradlens/nn/module.h"

namespace gradlens::onnx {

/// One node of the graph, as the model runs it.
struct GRADLENS_API NodeInfo {
  std::string name;         // the exporter's node name ("/layer2/conv1/Conv")
  std::string op_type;      // "Conv"
  std::string module_path;  // the module it came from ("layer2.conv1"; "" when none)
  std::vector<std::string> inputs, outputs;
};

/// The graph as a Module: one data input (an image batch [N, C, H, W] for a CNN) and one output.
/// Each node that came from a PyTorch module with weights, and each activation and pooling, is a
/// child module under that module's path ("layer2.conv1"), so its parameters have PyTorch's
/// state_dict names and layer methods address it by the name people know. A block ("layer3") is
/// a module too: its hooks see the output of its last node.
class GRADLENS_API OnnxModel : public nn::Module {
 public:
  /// Reads `path`; an op outside the supported set is refused naming the node, its op type and the
  /// opset, and any other problem names the file (std::runtime_error).
  static std::unique_ptr<OnnxModel> load(const std::string& path);
  /// The same from the file's bytes; `path` names it in errors.
  static std::unique_ptr<OnnxModel> parse(const std::string& bytes, const std::string& path);

  /// One node's part of a run: its output shape and floating-point operations (2 per multiply-add
  /// of Conv, Gemm and MatMul; 0 for the rest).
  struct NodeTrace {
    std::size_t node;  // index into nodes()
    Shape output;
    std::int64_t flops = 0;
  };
  /// Runs `x` without recording a tape and reports every node that ran, in order.
  std::vector<NodeTrace> trace(const Tensor& x);
  /// The data input's shape as the file declares it; -1 for a named (dynamic) dim like the batch.
  const Shape& input_shape() const { return input_shape_; }

  /// Weights from a PyTorch state_dict (a safetensors file's float_tensors()): every parameter
  /// by name, and BatchNorm running_mean / running_var (num_batches_tracked is ignored); anything
  /// else, a missing parameter or a wrong shape is an error naming it, with nothing changed. Use
  /// it rather than load_state_dict, which sets the parameters only: a BatchNorm folds its weight,
  /// bias and statistics into one scale and shift when they are loaded.
  void load_weights(const std::map<std::string, Tensor>& state);

  /// Folds each BatchNormalization whose input is a Conv's output that nothing else reads into that
  /// Conv (scale and shift applied to its weight and bias at each forward): one pass over the
  /// activations instead of three, the same outputs within rounding. The BatchNorm's module then
  /// passes its input through, so a layer method on it still sees the normalized output, and
  /// load_weights still updates both. Returns how many were folded.
  std::size_t fold_batch_norms();

  const std::vector<NodeInfo>& nodes() const { return info_; }
  const std::string& input_name() const { return input_; }
  const std::string& output_name() const { return output_; }
  std::int64_t opset() const { return opset_; }

  struct Step;  // a node ready to run (model.cpp)
  ~OnnxModel() override;

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  OnnxModel();
  std::vector<NodeInfo> info_;
  std::vector<std::unique_ptr<Step>> steps_;
  std::map<std::string, Tensor> constants_;  // initializers that are not parameters
  std::string input_, output_;
  Shape input_shape_;
  std::vector<NodeTrace>* trace_ = nullptr;                       // set while trace() runs
  std::vector<std::pair<std::string, nn::Module*>> batch_norms_;  // path -> BatchNormalization
  std::map<std::string, int> readers_;  // value name -> how many steps read it
  std::size_t fusable_relu_after(std::size_t i) const;
  std::size_t fusable_residual_after(std::size_t i, std::string* other) const;
  bool read_once(const std::string& name) const;  // by one step, and not the model's output
  bool feeds_only(const Step& from, const Step& to) const;
  std::int64_t opset_ = 0;
};

/// The op types load() accepts, in the order the documentation lists them.
GRADLENS_API std::vector<std::string> supported_ops();

}  // namespace gradlens::onnx
