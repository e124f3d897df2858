// An imported CNN (../shared/reference/resnet8/resnet8.onnx, a CIFAR ResNet with BatchNorm and
// residual adds) at the work the issue names: eval at batch 1000 (BM_ResNet8Eval_CPU/1000), IG
// with 50 steps and NoiseTunnel over IG (smoothgrad_sq, 10 samples x 50 steps, the reference's
// nt10 call) for 1 and 16 images. items = images. bench/resnet8_bench.py times PyTorch 1.13 and
// Captum on the same work; bench/compare.py --bench bench_onnx prints the ratios. The _Cuda
// workloads run the same model on cuda:0 (skipped without a GPU; each iteration ends with a
// synchronize), up to the test set's 10,000 images, against resnet8_bench.py --device cuda.
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
#include "gradlens/kernels/backend.h"

#if GRADLENS_WITH_ONNX
#include "gradlens/onnx/model.h"

namespace {

using namespace gradlens;

std::unique_ptr<onnx::OnnxModel> load_resnet8() {
  const char* shared = std::getenv("GRADLENS_SHARED_DIR");
  const std::string dir = shared != nullptr && *shared ? shared : GRADLENS_SHARED_DIR;
  return onnx::OnnxModel::load(dir + "/reference/resnet8/resnet8.onnx");
}

// The file as it is, or with its BatchNorms folded into the convs (--fold-batchnorm); on the CPU
// or on cuda:0.
onnx::OnnxModel* resnet8(bool folded = false, Device device = kCPU) {
  static std::unique_ptr<onnx::OnnxModel> model = load_resnet8();
  static std::unique_ptr<onnx::OnnxModel> folded_model = [] {
    auto m = load_resnet8();
    m->fold_batch_norms();
    return m;
  }();
  if (device.is_cpu()) return folded ? folded_model.get() : model.get();
  static std::unique_ptr<onnx::OnnxModel> on_gpu[2];  // loaded when first asked for
  std::unique_ptr<onnx::OnnxModel>& m = on_gpu[folded ? 1 : 0];
  if (!m) {
    m = load_resnet8();
    if (folded) m->fold_batch_norms();
    m->to(device);
  }
  return m.get();
}

// Wall-clock time covers the GPU's work, not just its launches.
void finish(Device device) {
  if (!device.is_cpu()) backend_for(device).synchronize();
}

std::vector<std::int64_t> targets_for(std::int64_t n) {
  std::vector<std::int64_t> t;
  for (std::int64_t i = 0; i < n; ++i) t.push_back((i * 7) % 10);
  return t;
}

void run_eval(benchmark::State& state, bool folded, Device device = kCPU) try {
  if (!device.is_cpu() && !cuda_is_available()) return state.SkipWithError("no CUDA device");
  onnx::OnnxModel& model = *resnet8(folded, device);
  const Tensor x = bench::random_images(state.range(0), 1, device);
  {
    NoGradGuard no_grad;
    model(x);  // warm-up, as the PyTorch side's: the first run maps its memory
    finish(device);
  }
  for (auto _ : state) {
    NoGradGuard no_grad;
    benchmark::DoNotOptimize(model(x).data());
    finish(device);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
} catch (const std::exception& e) {
  state.SkipWithError(e.what());
}

void run_ig(benchmark::State& state, bool noise_tunnel, bool folded, Device device = kCPU) try {
  if (!device.is_cpu() && !cuda_is_available()) return state.SkipWithError("no CUDA device");
  const std::int64_t n = state.range(0);
  attr::MethodArgs args;
  args.values["delta"] = "true";  // the tutorial's return_convergence_delta
  args.concurrency = 0;
  if (noise_tunnel) {
    args.values["noise_tunnel"] = "smoothgrad_sq";
    args.values["nt_samples"] = "10";
    args.values["stdevs"] = "0.2";
  }
  const auto method = attr::make_method("integrated_gradients", *resnet8(folded, device), args);
  const Tensor x = bench::random_images(n, 1, device);
  const auto targets = targets_for(n);
  method->attribute(x, targets, Tensor());  // warm-up: sizes the chunks once
  finish(device);
  reset_peak_memory(device);
  for (auto _ : state) {
    const attr::Attributions a = method->attribute(x, targets, Tensor());
    benchmark::DoNotOptimize(a.values.data());
    finish(device);
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["peak_MB"] = static_cast<double>(memory_stats(device).peak) / (1 << 20);
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

void BM_ResNet8Eval_Cuda(benchmark::State& state) { run_eval(state, false, kCUDA); }
void BM_ResNet8IG_Cuda(benchmark::State& state) { run_ig(state, false, false, kCUDA); }
void BM_ResNet8NoiseTunnelIG_Cuda(benchmark::State& state) { run_ig(state, true, false, kCUDA); }

BENCHMARK(BM_ResNet8Eval_Cuda)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ResNet8IG_Cuda)->Arg(16)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ResNet8NoiseTunnelIG_Cuda)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

#endif  // GRADLENS_WITH_ONNX

BENCHMARK_MAIN();
