#include "tools/gradlens/common.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/data/transforms.h"
#include "gradlens/kernels/backend.h"
#include "gradlens/kernels/build_info.h"
#include "gradlens/kernels/precision.h"
#include "gradlens/nn/safetensors.h"
#include "tools/gradlens/commands.h"
#if GRADLENS_WITH_ONNX
#include "gradlens/onnx/model.h"
#endif
#include "tools/gradlens/shards.h"

namespace gradlens::cli {

namespace {
bool g_parse_only = false;
}  // namespace

void set_parse_only(bool on) { g_parse_only = on; }
bool parse_only() { return g_parse_only; }

bool is_onnx_file(const std::string& path) {
  return path.size() > 5 && path.compare(path.size() - 5, 5, ".onnx") == 0;
}

void add_onnx_flags(CLI::App* cmd, OnnxFlags& flags) {
  cmd->add_option("--weights",
                  flags.weights,
                  "with an .onnx --model: a safetensors state_dict (PyTorch's names) whose "
                  "parameters and BatchNorm statistics replace the file's");
  cmd->add_flag("--fold-batchnorm",
                flags.fold_batchnorm,
                "with an .onnx --model: fold each BatchNorm into the Conv before it (faster, the "
                "same results within rounding)");
}

void check_onnx_flags(const std::string& model_path, const OnnxFlags& flags) {
  if (is_onnx_file(model_path)) return;
  if (!flags.weights.empty())
    throw std::runtime_error("--weights " + flags.weights + " goes with an .onnx --model; " +
                             model_path + " is itself the weights of the tutorial Net");
  if (flags.fold_batchnorm)
    throw std::runtime_error("--fold-batchnorm goes with an .onnx --model; the tutorial Net (" +
                             model_path + ") has no BatchNorm");
}

std::unique_ptr<nn::Module> load_model_file(const std::string& path,
                                            bool allow_nonfinite,
                                            const OnnxFlags& onnx) {
  check_onnx_flags(path, onnx);
  if (!is_onnx_file(path)) {
    auto net = std::make_unique<nn::Net>();
    load_model(*net, path, allow_nonfinite);
    return net;
  }
#if GRADLENS_WITH_ONNX
  std::unique_ptr<onnx::OnnxModel> model = onnx::OnnxModel::load(path);
  if (!onnx.weights.empty()) {
    try {
      model->load_weights(nn::SafetensorsFile::load(onnx.weights).float_tensors());
    } catch (const std::exception& e) {
      throw std::runtime_error("--weights " + onnx.weights + ": " + e.what());
    }
  }
  if (onnx.fold_batchnorm) model->fold_batch_norms();
  const std::string& source = onnx.weights.empty() ? path : onnx.weights;
  for (const nn::Parameter& p :
       allow_nonfinite ? std::vector<nn::Parameter>{} : model->parameters()) {
    const std::int64_t bad = first_nonfinite(p.tensor);
    if (bad >= 0)
      throw std::runtime_error("[onnx] " + source + ": weight '" + p.name + "' " +
                               shape_str(p.tensor.shape()) + " is not finite at element " +
                               std::to_string(bad) + " (--allow-nonfinite loads it anyway)");
  }
  return model;
#else
  throw std::runtime_error("--model " + path +
                           ": this gradlens was built without ONNX import (install libonnx-dev "
                           "and libprotobuf-dev, then configure again)");
#endif
}

void check_output_file(const std::string& flag, const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path file(path);
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw std::runtime_error(flag + ": " + path + ": the folder " + dir.string() +
                             " does not exist");
  if (fs::exists(file, ec) && !fs::is_regular_file(file, ec))
    throw std::runtime_error(flag + ": " + path + " exists and is not a regular file");
  if (::access(dir.c_str(), W_OK) != 0)
    throw std::runtime_error(flag + ": " + path + ": cannot write into " + dir.string() + ": " +
                             std::strerror(errno));
}

void add_commands(CLI::App& app) {
  app.require_subcommand(1);
  app.set_version_flag("--version", "gradlens " + build_info().version);
  add_data_command(app);
  add_train_command(app);
  add_eval_command(app);
  add_attribute_command(app);
  add_methods_command(app);
  add_report_command(app);
  add_info_command(app);
  add_shards_command(app);
}

void print_accuracy(const nn::EvalResult& r) {
  std::printf("Accuracy of the network on the %lld test images: %.2f %% (%lld/%lld)\n",
              static_cast<long long>(r.total),
              r.accuracy(),
              static_cast<long long>(r.correct),
              static_cast<long long>(r.total));
  for (int c = 0; c < 10; ++c) {
    const double acc = r.class_total[c] ? 100.0 * r.class_correct[c] / r.class_total[c] : 0.0;
    std::printf("Accuracy for class: %-5s is %.1f %%\n", data::kCifarClassNames[c].data(), acc);
  }
}

void apply_precision(const std::string& precision, Device device) {
  const MatmulPrecision p = parse_matmul_precision(precision);
  if (p == MatmulPrecision::TF32 && device.is_cpu()) {
    throw std::runtime_error(
        "--precision tf32 needs --device cuda (TF32 is a tensor-core format; the CPU computes in "
        "float32)");
  }
  set_matmul_precision(p);
}

void apply_threads(int threads) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // More threads than cores only slows the kernels down (100,000 were once silently cut to 1,024).
  if (threads < 0 || threads > 4 * cores)
    throw std::runtime_error("--threads must be 0 (every core) to " + std::to_string(4 * cores) +
                             " (4 x the " + std::to_string(cores) + " cores), got " +
                             std::to_string(threads));
  set_num_threads(threads == 0 ? cores : threads);
}

}  // namespace gradlens::cli
