// Every ISA variant of the CPU kernels that this machine runs, side by side in one run, on the
// Net's own layers: the 3->6 (32x32) and 6->16 (14x14) 5x5 convolutions and the 400->120, 120->84
// and 84->10 linear layers, forward and backward (input, weight and bias gradients), at the batch
// sizes training (4, 64), attribution (1000 rows = 20 images x 50 IG steps) and inference use;
// and ResNet8's 3x3 stride-1 convolutions (../shared/reference/resnet8), forward and input gradient
// alone (attribution's backward), at 16 rows (a CPU chunk) and 64, each by Winograd (where the
// variant has it), in the *Phases rows by Winograd through the input's phases, and in the *Direct
// rows by the direct kernels.
// Names: BM_<Layer><Pass>/<variant>/<batch>; GFLOP/s counts 2 flops per multiply-add.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/workloads.h"
#include "gradlens/kernels/backend.h"
#include "gradlens/kernels/cpu/common/isa.h"

namespace {

using gradlens::Backend;
using gradlens::i64;
using Floats = std::vector<float>;

// bench::random_images' values, flattened: the kernels take raw buffers.
Floats random_floats(i64 n, std::uint32_t seed) {
  return gradlens::bench::random_images(0, seed, gradlens::kCPU, {n}).to_vector();
}

struct ConvShape {
  const char* name;
  i64 c, k, hw, stride = 1;
};
constexpr ConvShape kConvs[] = {{"Conv1", 3, 6, 32}, {"Conv2", 6, 16, 14}};

// ResNet8's 3x3, padding 1 layers: the stem, layer1, layer2.conv2 and layer3.conv2 (stride 1), and
// the stride-2 layer2.conv1 and layer3.conv1 (no Winograd).
constexpr ConvShape kResNetConvs[] = {{"Stem", 3, 16, 32},
                                      {"Layer1", 16, 16, 32},
                                      {"Layer2", 32, 32, 16},
                                      {"Layer3", 64, 64, 8},
                                      {"Layer2Down", 16, 32, 32, 2},
                                      {"Layer3Down", 32, 64, 16, 2}};

struct LinearShape {
  const char* name;
  i64 in, out;
};
constexpr LinearShape kLinears[] = {{"Fc1", 400, 120}, {"Fc2", 120, 84}, {"Fc3", 84, 10}};

// What a conv benchmark runs: the forward, the whole backward (dx, dw, db: training's), or dx
// alone (attribution's).
enum class ConvPass { kForward, kBackward, kInputGrad };

// A square conv of kernel r, padding pad and s's stride over s's shape.
void conv(benchmark::State& state, Backend* be, ConvShape s, i64 r, i64 pad, i64 n, ConvPass pass) {
  const i64 o = (s.hw + 2 * pad - r) / s.stride + 1;
  const gradlens::Conv2dParams p{n, s.c, s.hw, s.hw, s.k, r, r, s.stride, pad, o, o};
  const Floats x = random_floats(n * s.c * s.hw * s.hw, 1), w = random_floats(s.k * s.c * r * r, 2);
  const Floats b = random_floats(s.k, 3), dy = random_floats(n * s.k * o * o, 4);
  Floats y(dy.size()), dx(x.size()), dw(w.size()), db(b.size());
  const bool weights = pass == ConvPass::kBackward;
  for (auto _ : state) {
    if (pass == ConvPass::kForward) {
      be->conv2d_forward(p, x.data(), w.data(), b.data(), y.data());
    } else {
      be->conv2d_backward(p,
                          x.data(),
                          w.data(),
                          nullptr,
                          dy.data(),
                          dx.data(),
                          weights ? dw.data() : nullptr,
                          weights ? db.data() : nullptr);
    }
    benchmark::ClobberMemory();
  }
  const double macs = static_cast<double>(n * s.k * s.c * r * r * o * o) * (weights ? 2 : 1);
  state.counters["GFLOP/s"] = benchmark::Counter(
      2 * macs * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.SetItemsProcessed(state.iterations() * n);
}

// The same under a GRADLENS_WINOGRAD setting (docs/kernels.md), measured beside it in the same
// run: "0", the direct kernels Winograd replaces; "phases", Winograd reading every tile through
// the input's phases.
void conv_with(const char* winograd,
               benchmark::State& state,
               Backend* be,
               ConvShape s,
               i64 r,
               i64 pad,
               i64 n,
               ConvPass pass) {
  setenv("GRADLENS_WINOGRAD", winograd, 1);
  conv(state, be, s, r, pad, n, pass);
  unsetenv("GRADLENS_WINOGRAD");
}

void linear(benchmark::State& state, Backend* be, LinearShape s, i64 n, bool backward) {
  const Floats x = random_floats(n * s.in, 1), w = random_floats(s.out * s.in, 2);
  const Floats b = random_floats(s.out, 3), dy = random_floats(n * s.out, 4);
  Floats y(dy.size()), dx(x.size()), dw(w.size()), db(b.size());
  for (auto _ : state) {
    if (backward) {
      be->linear_backward(
          x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data(), n, s.in, s.out);
    } else {
      be->linear_forward(x.data(), w.data(), b.data(), y.data(), n, s.in, s.out);
    }
    benchmark::ClobberMemory();
  }
  const double macs = static_cast<double>(n * s.in * s.out) * (backward ? 2 : 1);
  state.counters["GFLOP/s"] = benchmark::Counter(
      2 * macs * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.SetItemsProcessed(state.iterations() * n);
}

}  // namespace

int main(int argc, char** argv) {
  using gradlens::cpu::Isa;
  std::vector<Isa> variants;
  for (Isa isa : gradlens::cpu::kAllIsas) {
    if (gradlens::cpu::isa_compiled(isa) && gradlens::cpu::isa_supported(isa)) {
      variants.push_back(isa);
    } else {
      std::printf("skipping the %s variant: %s\n",
                  std::string(gradlens::cpu::isa_name(isa)).c_str(),
                  gradlens::cpu::isa_compiled(isa)
                      ? ("this CPU lacks " + gradlens::cpu::missing_features(isa)).c_str()
                      : "not compiled into this build");
    }
  }
  // Interleaved by shape, so a noisy moment hits every variant of one shape alike.
  auto add = [&](const std::string& layer, const std::string& pass, i64 n, auto run) {
    for (Isa isa : variants) {
      const std::string name = "BM_" + layer + pass + "/" +
                               std::string(gradlens::cpu::isa_name(isa)) + "/" + std::to_string(n);
      benchmark::RegisterBenchmark(name.c_str(), run, &gradlens::cpu::isa_backend(isa))
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
  };
  for (bool backward : {false, true}) {
    const std::string pass = backward ? "Backward" : "Forward";
    for (const ConvShape& s : kConvs) {
      for (i64 n : {i64{1}, i64{4}, i64{64}, i64{1000}}) {
        add(s.name, pass, n, [=](benchmark::State& st, Backend* be) {
          conv(st, be, s, 5, 0, n, backward ? ConvPass::kBackward : ConvPass::kForward);
        });
      }
    }
    for (const ConvShape& s : kResNetConvs) {
      for (i64 n : {i64{16}, i64{64}}) {
        const ConvPass resnet_pass = backward ? ConvPass::kInputGrad : ConvPass::kForward;
        const std::string name = backward ? "InputGrad" : "Forward";
        add(s.name, name, n, [=](benchmark::State& st, Backend* be) {
          conv(st, be, s, 3, 1, n, resnet_pass);
        });
        if (s.stride != 1 || s.c < 8) continue;  // Winograd's layers only
        add(s.name, name + "Phases", n, [=](benchmark::State& st, Backend* be) {
          conv_with("phases", st, be, s, 3, 1, n, resnet_pass);
        });
        add(s.name, name + "Direct", n, [=](benchmark::State& st, Backend* be) {
          conv_with("0", st, be, s, 3, 1, n, resnet_pass);
        });
      }
    }
    for (const LinearShape& s : kLinears) {
      for (i64 n : {i64{4}, i64{64}, i64{1000}, i64{10000}}) {
        add(s.name, pass, n, [=](benchmark::State& st, Backend* be) {
          linear(st, be, s, n, backward);
        });
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
