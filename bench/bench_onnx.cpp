// An imported CNN (../shared/reference/resnet8/resnet8.onnx, a CIFAR ResNet with BatchNorm and
// residual adds) at the work the issue names: eval at batch 1000 (BM_ResNet8Eval_CPU/1000), IG
// with 50 steps and NoiseTunnel over IG (smoothgrad_sq, 10 samples x 50 steps, the reference's
// nt10 call) for 1 and 16 images. items = images. bench/resnet8_bench.py times PyTorch 1.13 and
// Captum on the same work; bench/compare.py --bench bench_onnx prints the ratios.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "bench/workloads.h"
#include "gradlens/attr/registry.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/storage.h"

#if GRADLENS_WITH_ONNX
#include "gradlens/onnx/model.h"

namespace {

using namespace gradlens;

std::unique_ptr<onnx::OnnxModel> load_resnet8() {
  const char* shared = std::getenv("GRADLENS_SHARED_DIR");
  const std::string dir = shared != nullptr && *shared ? shared : GRADLENS_SHARED_DIR;
  return onnx::OnnxModel::load(dir + "/reference/resnet8/resnet8.onnx");
}

// The file as it is, or with its BatchNorms folded into the convs (--fold-batchnorm).
onnx::OnnxModel* resnet8(bool folded = false) {
  static std::unique_ptr<onnx::OnnxModel> model = load_resnet8();
  static std::unique_ptr<onnx::OnnxModel> folded_model = [] {
    auto m = load_resnet8();
    m->fold_batch_norms();
    return m;
  }();
  return folded ? folded_model.get() : model.get();
}

std::vector<std::int64_t> targets_for(std::int64_t n) {
  std::vector<std::int64_t> t;
  for (std::int64_t i = 0; i < n; ++i) t.push_back((i * 7) % 10);
  return t;
}

void run_eval(benchmark::State& state, bool folded) try {
  onnx::OnnxModel& model = *resnet8(folded);
  const Tensor x = bench::random_images(state.range(0), 1);
  {
    NoGradGuard no_grad;
    model(x);  // warm-up, as the PyTorch side's: the first run maps its memory
  }
  for (auto _ : state) {
    NoGradGuard no_grad;
    benchmark::DoNotOptimize(model(x).data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
} catch (const std::exception& e) {
  state.SkipWithError(e.what());
}

void run_ig(benchmark::State& state, bool noise_tunnel, bool folded) try {
  const std::int64_t n = state.range(0);
  attr::MethodArgs args;
  args.values["delta"] = "true";  // the tutorial's return_convergence_delta
  args.concurrency = 0;
  if (noise_tunnel) {
    args.values["noise_tunnel"] = "smoothgrad_sq";
    args.values["nt_samples"] = "10";
    args.values["stdevs"] = "0.2";
  }
  const auto method = attr::make_method("integrated_gradients", *resnet8(folded), args);
  const Tensor x = bench::random_images(n, 1);
  const auto targets = targets_for(n);
  method->attribute(x, targets, Tensor());  // warm-up: sizes the chunks once
  reset_peak_memory(kCPU);
  for (auto _ : state) {
    const attr::Attributions a = method->attribute(x, targets, Tensor());
    benchmark::DoNotOptimize(a.values.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["peak_MB"] = static_cast<double>(memory_stats(kCPU).peak) / (1 << 20);
} catch (const std::exception& e) {
  state.SkipWithError(e.what());
}

void BM_ResNet8Eval_CPU(benchmark::State& state) { run_eval(state, false); }
void BM_ResNet8IG_CPU(benchmark::State& state) { run_ig(state, false, false); }
void BM_ResNet8NoiseTunnelIG_CPU(benchmark::State& state) { run_ig(state, true, false); }
// The same model with --fold-batchnorm: the same numbers within rounding
// (tests/onnx/test_onnx.cpp).
void BM_ResNet8FoldedEval_CPU(benchmark::State& state) { run_eval(state, true); }
void BM_ResNet8FoldedIG_CPU(benchmark::State& state) { run_ig(state, false, true); }
void BM_ResNet8FoldedNoiseTunnelIG_CPU(benchmark::State& state) { run_ig(state, true, true); }

BENCHMARK(BM_ResNet8Eval_CPU)->Arg(1000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ResNet8IG_CPU)->Arg(1)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ResNet8NoiseTunnelIG_CPU)
    ->Arg(1)
    ->Arg(16)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_ResNet8FoldedEval_CPU)->Arg(1000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ResNet8FoldedIG_CPU)->Arg(1)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ResNet8FoldedNoiseTunnelIG_CPU)
    ->Arg(1)
    ->Arg(16)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

#endif  // GRADLENS_WITH_ONNX

BENCHMARK_MAIN();
