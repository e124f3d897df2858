// Every attribution method on the tutorial Net with Captum's defaults as the tutorial uses them,
// for 1 and 16 images: BM_<Method>_CPU/<images>, items = images, plus the tutorial's
// NoiseTunnel(IG) (100 samples x 50 steps = 5,000 rows for one image). Peak live tensor memory is
// a counter. bench/captum_bench.py runs Captum's twin of each; bench/compare.py prints the ratios.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bench/workloads.h"
#include "gradlens/attr/registry.h"
#include "gradlens/autograd/storage.h"
#include "gradlens/nn/lenet.h"
#include "gradlens/nn/safetensors.h"

namespace {

using namespace gradlens;

nn::Net& bench_net() {
  static nn::Net net = bench::pretrained_net();  // loaded once for every benchmark
  return net;
}

// 16 superpixels of 8x8, shared by the three channels (the reference's feature_mask).
std::vector<std::int64_t> superpixel_mask() {
  std::vector<std::int64_t> mask(32 * 32);
  for (std::int64_t h = 0; h < 32; ++h)
    for (std::int64_t w = 0; w < 32; ++w)
      mask[static_cast<std::size_t>(h * 32 + w)] = (h / 8) * 4 + w / 8;
  return mask;
}

struct Workload {
  std::string name;  // BM_<name>_CPU
  std::string method;
  attr::MethodArgs args;
  int baselines = 0;  // 0: zero baselines (or none); K: K random images (the *_shap methods)
  std::vector<std::int64_t> images = {1, 16};
};

std::vector<Workload> workloads() {
  const auto cfg = [](const char* method) {
    attr::MethodArgs args;
    // IG with its delta (the tutorial asks for it), GradientShap without (Captum's default)
    if (std::string_view(method) == "integrated_gradients") args.values["delta"] = "true";
    args.concurrency = 0;  // as the command line
    return args;
  };
  // Every method of the registry under its Captum class (captum_bench.py's names), with its
  // defaults: 50 Gauss-Legendre steps, zero baselines, LayerGradCam on conv2, (3,8,8) occlusion
  // windows with (3,4,4) strides; the distribution methods get 8 random images as baselines.
  std::vector<Workload> w;
  for (const attr::MethodInfo& m : attr::methods()) {
    w.push_back(
        {std::string(m.captum_class), std::string(m.name), cfg(std::string(m.name).c_str())});
    if (m.baselines == attr::Baselines::Distribution) w.back().baselines = 8;
    if (m.name == "feature_ablation") {
      w.back().args.feature_mask = superpixel_mask();
      w.back().args.mask_shape = {32, 32};
    }
  }
  // The tutorial's NoiseTunnel(IG): smoothgrad_sq, 100 samples, stdev 0.2, zero baselines.
  Workload nt{"NoiseTunnelIG", "integrated_gradients", cfg("integrated_gradients"), 0, {1, 16}};
  nt.args.values["noise_tunnel"] = "smoothgrad_sq";
  nt.args.values["nt_samples"] = "100";
  nt.args.values["stdevs"] = "0.2";
  w.push_back(nt);
  return w;
}

void run_workload(benchmark::State& state, const Workload& w) try {
  const std::int64_t n = state.range(0);
  nn::Net& net = bench_net();
  const std::unique_ptr<attr::Attribution> method = attr::make_method(w.method, net, w.args);
  const Tensor x = bench::random_images(n, 1);
  std::vector<std::int64_t> targets;
  for (std::int64_t i = 0; i < n; ++i) targets.push_back((i * 7) % 10);
  const Tensor baselines = w.baselines ? bench::random_images(w.baselines, 2) : Tensor();

  method->attribute(x, targets, baselines);  // warm-up: sizes the chunks once
  reset_peak_memory(kCPU);
  for (auto _ : state) {
    const attr::Attributions a = method->attribute(x, targets, baselines);
    benchmark::DoNotOptimize(a.values.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["peak_MB"] = static_cast<double>(memory_stats(kCPU).peak) / (1 << 20);
} catch (const std::exception& e) {
  state.SkipWithError(e.what());
}

}  // namespace

int main(int argc, char** argv) {
  for (const Workload& w : workloads()) {
    auto* b = benchmark::RegisterBenchmark(("BM_" + w.name + "_CPU").c_str(),
                                           [w](benchmark::State& s) { run_workload(s, w); });
    for (std::int64_t n : w.images) b->Arg(n);
    b->Unit(benchmark::kMillisecond)->UseRealTime();  // wall time: the kernels are threaded
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
