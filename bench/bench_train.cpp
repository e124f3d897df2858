// Training and inference of the tutorial Net, and its two convolutions, on the CPU. Names follow
// BM_<Workload>_<Backend>/<batch>; items are images, timed in wall-clock time (UseRealTime) since
// the kernels run on several threads. bench/compare.py runs PyTorch's twin of each.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "bench/workloads.h"
#include "gradlens/autograd/engine.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/nn/lenet.h"
#include "gradlens/nn/loss.h"
#include "gradlens/nn/optim/sgd.h"

namespace {

using namespace gradlens;

// One SGD step of the tutorial's recipe: zero_grad, forward, loss, backward, step, cycling the
// batches of bench::training_batches (torch_bench.py does the same).
void BM_TrainStep_CPU(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  nn::Net net(0);
  nn::SGD sgd(net.parameters(), {.lr = 0.001f, .momentum = 0.9f});
  nn::CrossEntropyLoss criterion;
  const bench::TrainingBatches data = bench::training_batches(batch);
  std::size_t k = 0;
  for (auto _ : state) {
    const Tensor& x = data.images[k % data.kCount];
    const auto& y = data.labels[k++ % data.kCount];
    sgd.zero_grad();
    const Tensor loss = criterion(net(x), y);
    loss.backward();
    sgd.step();
    benchmark::DoNotOptimize(loss.item());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_TrainStep_CPU)->Arg(4)->Arg(64)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_Inference_CPU(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  nn::Net net(0);
  const Tensor x = bench::random_images(batch, 2);
  NoGradGuard no_grad;
  for (auto _ : state) {
    const Tensor logits = net(x);
    benchmark::DoNotOptimize(logits.data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_Inference_CPU)
    ->Arg(1)
    ->Arg(64)
    ->Arg(1000)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// The Net's two convolutions at batch 64: arg 1 = conv1 (3->6 on 32x32), arg 2 = conv2 (6->16 on
// 14x14).
Shape conv_input(std::int64_t which) {
  return which == 1 ? Shape{64, 3, 32, 32} : Shape{64, 6, 14, 14};
}
Shape conv_weight(std::int64_t which) {
  return which == 1 ? Shape{6, 3, 5, 5} : Shape{16, 6, 5, 5};
}
double conv_macs(std::int64_t which) {
  return which == 1 ? 64.0 * 6 * 28 * 28 * 75 : 64.0 * 16 * 10 * 10 * 150;
}

void BM_Conv2dForward_CPU(benchmark::State& state) {
  const std::int64_t which = state.range(0);
  const Tensor x = bench::random_images(0, 3, kCPU, conv_input(which));
  const Tensor w = bench::random_images(0, 4, kCPU, conv_weight(which));
  const Tensor b = bench::random_images(0, 5, kCPU, {conv_weight(which)[0]});
  NoGradGuard no_grad;
  for (auto _ : state) {
    const Tensor y = conv2d(x, w, b);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2 * conv_macs(which) * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_Conv2dForward_CPU)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Gradients for input (conv2 only: conv1's input is the image), weight and bias.
void BM_Conv2dBackward_CPU(benchmark::State& state) {
  const std::int64_t which = state.range(0);
  Tensor x = bench::random_images(0, 3, kCPU, conv_input(which));
  if (which == 2) x.set_requires_grad();
  Tensor w = bench::random_images(0, 4, kCPU, conv_weight(which)).set_requires_grad();
  Tensor b = bench::random_images(0, 5, kCPU, {conv_weight(which)[0]}).set_requires_grad();
  const Tensor y = conv2d(x, w, b);
  const Tensor dy = bench::random_images(0, 6, kCPU, y.shape());
  std::vector<Tensor> wrt = {w, b};
  if (which == 2) wrt.push_back(x);
  for (auto _ : state) {
    const auto g = grad({y}, wrt, {dy});
    benchmark::DoNotOptimize(g[0].data());
  }
  const double passes = which == 2 ? 2.0 : 1.0;  // weight grad, plus input grad for conv2
  state.counters["GFLOP/s"] = benchmark::Counter(
      2 * passes * conv_macs(which) * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_Conv2dBackward_CPU)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
