// Pieces the subcommands share: printing an evaluation, the thread and precision settings (loading
// a model and evaluating it are the library's: nn/safetensors.h, nn/evaluate.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gradlens/data/cifar10.h"
#include "gradlens/nn/evaluate.h"
#include "gradlens/nn/lenet.h"
#include "gradlens/nn/safetensors.h"

namespace CLI {
class App;
}  // namespace CLI

namespace gradlens::cli {

/// Prints the tutorial's "Accuracy of the network ..." and per-class lines.
void print_accuracy(const nn::EvalResult& result);
using nn::EvalResult;
using nn::evaluate;
using nn::load_model;
/// --model FILE.onnx: an imported graph (gradlens built with ONNX import).
bool is_onnx_file(const std::string& path);
/// How an .onnx --model is read: --weights (a safetensors state_dict with PyTorch's names that
/// replaces the file's initializers) and --fold-batchnorm (OnnxModel::fold_batch_norms).
struct OnnxFlags {
  std::string weights;
  bool fold_batchnorm = false;
};
void add_onnx_flags(CLI::App* cmd, OnnxFlags& flags);
/// Refuses --weights or --fold-batchnorm with a model that is not an .onnx file.
void check_onnx_flags(const std::string& model_path, const OnnxFlags& flags);
/// --model: an .onnx graph, or the tutorial Net with the weights of a safetensors file; a NaN or
/// infinite weight is refused by name unless allow_nonfinite.
std::unique_ptr<nn::Module> load_model_file(const std::string& path,
                                            bool allow_nonfinite,
                                            const OnnxFlags& onnx = {});
/// Refuses, before any work, an output file whose folder is missing or not writable, or that
/// exists and is not a regular file; `flag` names it in the message.
void check_output_file(const std::string& flag, const std::string& path);
/// 0 means every core.
void apply_threads(int threads);
/// --precision float32|tf32 (kernels/precision.h); tf32 asks for CUDA, where the tensor cores are.
void apply_precision(const std::string& precision, Device device);
/// --precision's help, the same for every subcommand.
inline constexpr const char* kPrecisionHelp =
    "conv2d and linear on CUDA: float32 or tf32 (tensor cores, not yet tuned: on an H200 "
    "slower than float32)";

}  // namespace gradlens::cli
