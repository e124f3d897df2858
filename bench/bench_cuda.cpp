// The GPU twins of bench_train.cpp and bench_attr.cpp, every tensor on cuda:0: training steps
// (batch 4 and 64), inference (batch 1000 and 10,000), IntegratedGradients (50 steps) and the
// tutorial's NoiseTunnel(IG) for one image. Named BM_<Workload>_Cuda/<batch>, items are images.
// NOTE: kernels run asynchronously, so each iteration ends with synchronize(): wall-clock time
// (UseRealTime) then covers the GPU work, not just the launches. bench/torch_bench.py --device cuda
// runs PyTorch + cuDNN's twin of each. The _Tf32 variants run conv2d and linear on the TF32 tensor
// cores (--precision tf32); compare.py --tf32 sets them against PyTorch with TF32 on.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "bench/workloads.h"
#include "gradlens/attr/integrated_gradients.h"
#include "gradlens/attr/noise_tunnel.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/autograd/storage.h"
#include "gradlens/kernels/backend.h"
#include "gradlens/kernels/precision.h"
#include "gradlens/nn/lenet.h"
#include "gradlens/nn/loss.h"
#include "gradlens/nn/optim/sgd.h"
#include "gradlens/nn/safetensors.h"

namespace {

using namespace gradlens;

// False (and the benchmark marked skipped) where there is no GPU.
bool have_cuda(benchmark::State& state) {
  if (cuda_is_available()) return true;
  state.SkipWithError("no CUDA device");
  return false;
}

void sync() { backend_for(kCUDA).synchronize(); }

void report_peak(benchmark::State& state) {
  state.counters["peak_MB"] = static_cast<double>(memory_stats(kCUDA).peak) / (1 << 20);
}

// One SGD step of the tutorial's recipe, cycling 32 batches with scrambled labels as
// BM_TrainStep_CPU does (one fixed batch drives the gradients to denormals).
void BM_TrainStep_Cuda(benchmark::State& state) try {
  if (!have_cuda(state)) return;
  const std::int64_t batch = state.range(0);
  nn::Net net(0);
  net.to(kCUDA);
  nn::SGD sgd(net.parameters(), {.lr = 0.001f, .momentum = 0.9f});
  nn::CrossEntropyLoss criterion;
  const bench::TrainingBatches data = bench::training_batches(batch, kCUDA);
  std::size_t k = 0;
  const auto step = [&] {
    const Tensor& x = data.images[k % data.kCount];
    const auto& y = data.labels[k++ % data.kCount];
    sgd.zero_grad();
    const Tensor loss = criterion(net(x), y);
    loss.backward();
    sgd.step();
    // As the tutorial's running_loss += loss.item(): one device-to-host copy per step.
    benchmark::DoNotOptimize(loss.item());
    sync();
  };
  step();  // warm-up: first launches, allocations, the momentum buffers
  reset_peak_memory(kCUDA);
  const std::size_t mallocs = backend_for(kCUDA).device_allocations();
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * batch);
  report_peak(state);
  // The caching allocator's promise: 0 once the first step has run.
  state.counters["cudaMalloc_calls"] =
      static_cast<double>(backend_for(kCUDA).device_allocations() - mallocs);
} catch (const std::exception& e) {
  state.SkipWithError(e.what());
}
BENCHMARK(BM_TrainStep_Cuda)
    ->Arg(4)
    ->Arg(64)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

void BM_Inference_Cuda(benchmark::State& state) try {
  if (!have_cuda(state)) return;
  const std::int64_t batch = state.range(0);
  nn::Net net(0);
  net.to(kCUDA);
  const Tensor x = bench::random_images(batch, 2, kCUDA);
  NoGradGuard no_grad;
  const auto forward = [&] {
    const Tensor logits = net(x);
    benchmark::DoNotOptimize(logits.data());
    sync();
  };
  forward();
  reset_peak_memory(kCUDA);
  for (auto _ : state) forward();
  state.SetItemsProcessed(state.iterations() * batch);
  report_peak(state);
} catch (const std::exception& e) {
  state.SkipWithError(e.what());
}
BENCHMARK(BM_Inference_Cuda)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Captum's defaults as the tutorial calls them, for 1, 16 and 1,000 images: IG with 50
// Gauss-Legendre steps and its convergence delta; NoiseTunnel(IG) smoothgrad_sq, 100 samples,
// stdev 0.2 (5,000 rows an image).
void BM_IntegratedGradients_Cuda(benchmark::State& state) try {
  if (!have_cuda(state)) return;
  nn::Net net = bench::pretrained_net(kCUDA);
  attr::IntegratedGradients ig([&net](const Tensor& x) { return net(x); });
  const Tensor x = bench::random_images(state.range(0), 1, kCUDA);
  const std::vector<std::int64_t> target(static_cast<std::size_t>(state.range(0)), 3);
  const auto run = [&] {
    const attr::Attributions a = ig.attribute(x, target);
    benchmark::DoNotOptimize(a.values.data());
    sync();
  };
  run();  // also sizes the planner's chunks once
  reset_peak_memory(kCUDA);
  for (auto _ : state) run();
  state.SetItemsProcessed(state.iterations() * state.range(0));
  report_peak(state);
} catch (const std::exception& e) {
  state.SkipWithError(e.what());
}
BENCHMARK(BM_IntegratedGradients_Cuda)
    ->Arg(1)
    ->Arg(16)
    ->Arg(1000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_NoiseTunnelIG_Cuda(benchmark::State& state) try {
  if (!have_cuda(state)) return;
  nn::Net net = bench::pretrained_net(kCUDA);
  attr::IntegratedGradients ig([&net](const Tensor& x) { return net(x); });
  attr::NoiseTunnelOptions options;
  options.type = attr::NoiseTunnelType::SmoothGradSq;
  options.nt_samples = 100;
  options.stdevs = 0.2f;
  attr::NoiseTunnel nt(ig, options);
  const Tensor x = bench::random_images(state.range(0), 1, kCUDA);
  const std::vector<std::int64_t> target(static_cast<std::size_t>(state.range(0)), 3);
  const auto run = [&] {
    const attr::Attributions a = nt.attribute(x, target);
    benchmark::DoNotOptimize(a.values.data());
    sync();
  };
  run();
  reset_peak_memory(kCUDA);
  for (auto _ : state) run();
  state.SetItemsProcessed(state.iterations() * state.range(0));
  report_peak(state);
} catch (const std::exception& e) {
  state.SkipWithError(e.what());
}
BENCHMARK(BM_NoiseTunnelIG_Cuda)
    ->Arg(1)
    ->Arg(16)
    ->Arg(1000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// A benchmark body with --precision tf32. The bodies catch their own errors, so the reset runs.
template <void (*Body)(benchmark::State&)>
void with_tf32(benchmark::State& state) {
  set_matmul_precision(MatmulPrecision::TF32);
  Body(state);
  set_matmul_precision(MatmulPrecision::Float32);
}
BENCHMARK(with_tf32<BM_TrainStep_Cuda>)
    ->Name("BM_TrainStep_Cuda_Tf32")
    ->Arg(64)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(with_tf32<BM_Inference_Cuda>)
    ->Name("BM_Inference_Cuda_Tf32")
    ->Arg(10000)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(with_tf32<BM_IntegratedGradients_Cuda>)
    ->Name("BM_IntegratedGradients_Cuda_Tf32")
    ->Arg(1000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(with_tf32<BM_NoiseTunnelIG_Cuda>)
    ->Name("BM_NoiseTunnelIG_Cuda_Tf32")
    ->Arg(16)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
