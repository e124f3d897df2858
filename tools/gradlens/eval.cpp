// gradlens eval: accuracy of a saved model, per class, and the tutorial's GroundTruth/Predicted
// lines for the first four test images.
#include <cstdio>

#include "tools/gradlens/commands.h"
#include "tools/gradlens/common.h"

namespace gradlens::cli {

namespace {

struct EvalOptions {
  std::string model = "cifar_net.safetensors";
  bool allow_nonfinite = false;  // load a model with NaN or Inf weights
  OnnxFlags onnx;
  std::string data_dir = ".data/cifar10";
  std::string device = "cpu";
  std::string precision = "float32";
  std::int64_t batch_size = 1000;
  int threads = 0;
};

void run_eval(const EvalOptions& o) {
  if (o.batch_size < 1) throw std::runtime_error("--batch-size must be >= 1");
  const Device device = Device::parse(o.device);
  apply_precision(o.precision, device);
  apply_threads(o.threads);
  check_onnx_flags(o.model, o.onnx);
  if (parse_only()) return;
  const std::unique_ptr<nn::Module> model = load_model_file(o.model, o.allow_nonfinite, o.onnx);
  nn::Module& net = *model;
  net.to(device);
  const data::CifarSplit test = data::load_cifar10(o.data_dir, false);
  const EvalResult r = evaluate(net, test, o.batch_size, device);
  std::printf("GroundTruth: ");
  for (int j = 0; j < 4 && j < test.size(); ++j) {
    std::printf(" %-5s", data::kCifarClassNames[test.labels[j]].data());
  }
  std::printf("\nPredicted:   ");
  for (int j = 0; j < 4 && j < test.size(); ++j) {
    std::printf(" %-5s", data::kCifarClassNames[r.predictions[j]].data());
  }
  std::printf("\n");
  print_accuracy(r);
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "accuracy of a saved model on the CIFAR-10 test set");
  cmd->add_option("--model", o->model, "model file (safetensors state_dict)")
      ->capture_default_str();
  cmd->add_flag("--allow-nonfinite", o->allow_nonfinite, "load a model with NaN or Inf weights");
  add_onnx_flags(cmd, o->onnx);
  cmd->add_option("--data", o->data_dir, "CIFAR-10 binary directory")->capture_default_str();
  cmd->add_option("--device", o->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--precision", o->precision, kPrecisionHelp)->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "images per forward pass")->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0 = every core)")->capture_default_str();
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace gradlens::cli
