// gradlens info: the version, how it was built, the CPU and the kernel variant chosen for it,
// threads, and the CUDA devices (or why there are none): what a bug report needs. With --model,
// a model's graph instead.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "gradlens/autograd/tensor.h"
#include "gradlens/kernels/build_info.h"
#include "gradlens/kernels/cpu/common/isa.h"
#include "gradlens/kernels/registry.h"
#include "gradlens/nn/module.h"
#include "tools/gradlens/commands.h"
#include "tools/gradlens/common.h"
#if GRADLENS_WITH_ONNX
#include "gradlens/onnx/model.h"
#endif

namespace gradlens::cli {

namespace {

std::string with_commas(std::int64_t v) {
  std::string digits = std::to_string(v), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string dims_text(const Shape& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i)
    out += (i ? ", " : "") + (shape[i] < 0 ? std::string("N") : std::to_string(shape[i]));
  return out + "]";
}

// `gradlens info --model FILE`: an ONNX model's graph, run once on one zero image for its shapes;
// a tutorial Net's parameters.
void print_model(const std::string& path) {
  const std::unique_ptr<nn::Module> model = load_model_file(path, /*allow_nonfinite=*/true);
  std::int64_t parameters = 0;
  for (const nn::Parameter& p : model->parameters()) parameters += p.tensor.numel();
#if GRADLENS_WITH_ONNX
  if (auto* graph = dynamic_cast<onnx::OnnxModel*>(model.get())) {
    Shape in = graph->input_shape();
    if (in.empty()) in = {-1, 3, 32, 32};
    Shape one = in;
    for (std::int64_t& d : one) d = d < 0 ? 1 : d;
    const auto trace = graph->trace(Tensor::zeros(one));
    std::int64_t flops = 0;
    for (const auto& t : trace) flops += t.flops;
    std::printf("model:    %s: ONNX opset %lld, input '%s' %s, output '%s'\n",
                path.c_str(),
                static_cast<long long>(graph->opset()),
                graph->input_name().c_str(),
                dims_text(in).c_str(),
                graph->output_name().c_str());
    std::printf("          %zu nodes, %s parameters, %s FLOPs per image (2 per multiply-add)\n",
                graph->nodes().size(),
                with_commas(parameters).c_str(),
                with_commas(flops).c_str());
    std::printf(
        "%4s  %-34s %-20s %-22s %-18s %s\n", "#", "node", "op", "module", "output", "FLOPs");
    for (const auto& t : trace) {
      const auto& node = graph->nodes()[t.node];
      std::printf("%4zu  %-34s %-20s %-22s %-18s %s\n",
                  t.node,
                  node.name.c_str(),
                  node.op_type.c_str(),
                  node.module_path.empty() ? "-" : node.module_path.c_str(),
                  dims_text(t.output).c_str(),
                  t.flops ? with_commas(t.flops).c_str() : "");
    }
    return;
  }
#endif
  std::printf("model:    %s: the tutorial Net, %s parameters\n",
              path.c_str(),
              with_commas(parameters).c_str());
  for (const nn::Parameter& p : model->parameters())
    std::printf("          %-12s %s\n", p.name.c_str(), dims_text(p.tensor.shape()).c_str());
}

void run_info(const std::string& model) {
  if (parse_only()) return;
  if (!model.empty()) {
    print_model(model);
    return;
  }
  const BuildInfo& b = build_info();
  std::printf("gradlens %s\n", b.version.c_str());
  std::printf("build:    %s, %s, flags \"%s\"\n",
              b.build_type.c_str(),
              b.compiler.c_str(),
              b.flags.c_str());
  std::printf("          CPU kernels compiled: %s; CUDA kernels: %s\n",
              b.cpu_variants.c_str(),
              b.cuda.c_str());
  std::printf("cpu:      %s, %u hardware threads\n",
              cpu::cpu_brand().c_str(),
              std::thread::hardware_concurrency());
  std::printf("          features: %s\n", cpu::cpu_features().c_str());
  const cpu::Isa isa = cpu::active_isa();  // throws, one line, on a bad GRADLENS_CPU
  const char* forced = std::getenv("GRADLENS_CPU");
  const bool is_forced = forced != nullptr && *forced != '\0';
  std::printf("kernels:  %s (%s)\n",
              std::string(cpu::isa_name(isa)).c_str(),
              is_forced
                  ? "forced by GRADLENS_CPU"
                  : "the best this CPU supports; GRADLENS_CPU=generic|avx2|avx512 forces one");
  std::printf("threads:  %d\n", num_threads());
  std::string why, versions;
  const auto devices = detail::cuda_devices(&why, &versions);
  if (devices.empty()) {
    std::printf(
        "cuda:     none: %s%s%s\n", why.c_str(), versions.empty() ? "" : "; ", versions.c_str());
    return;
  }
  std::printf("cuda:     %zu device(s), %s\n", devices.size(), versions.c_str());
  for (std::size_t i = 0; i < devices.size(); ++i) {
    const auto& d = devices[i];
    std::printf("          cuda:%zu %s, compute capability %d.%d, %.1f GiB, %d SMs\n",
                i,
                d.name.c_str(),
                d.major,
                d.minor,
                static_cast<double>(d.total_memory) / (1 << 30),
                d.multiprocessors);
  }
}

}  // namespace

void add_info_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "info",
      "version, build, CPU and kernel variant, threads and CUDA devices (or a model's graph)");
  auto model = std::make_shared<std::string>();
  cmd->add_option("--model",
                  *model,
                  "print this model instead: an ONNX file's graph (nodes, op "
                  "types, output shapes, parameters, FLOPs per image) or a "
                  "tutorial Net's parameters");
  cmd->callback([model] { run_info(*model); });
}

}  // namespace gradlens::cli
