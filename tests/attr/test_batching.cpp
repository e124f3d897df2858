// The memory budget: a NoiseTunnel over IG whose whole batch would need hundreds of MB runs in
// chunks whose live storage stays within the budget the user set, with the same result; and the
// budget is a ceiling, not a target: on the CPU chunks stay cache-sized under a large one.
#include <gtest/gtest.h>

#include "attr/batching.h"
#include "attr/integrated_gradients.h"
#include "attr/noise_tunnel.h"
#include "autograd/ops.h"
#include "autograd/storage.h"
#include "tests/attr/reference.h"

using namespace gradlens;

TEST(Batching, PeakMemoryStaysWithinTheBudget) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor x = slice(set->inputs, 0, 2);
  const std::vector<std::int64_t> t(set->labels.begin(), set->labels.begin() + 2);
  // 2 images x 20 samples x 50 steps: ~300 MB unchunked
  constexpr std::size_t kBudget = std::size_t{4} << 20;

  auto run = [&](std::size_t budget, std::size_t* peak_delta) {
    attr::IntegratedGradients ig(set->forward);
    attr::NoiseTunnel nt(
        ig,
        {.type = attr::NoiseTunnelType::SmoothGradSq, .nt_samples = 20, .stdevs = 0.2f, .seed = 5});
    ig.batching().set_memory_budget(budget);
    ig.batching().chunk_rows(set->forward, {3, 32, 32}, kCPU);  // measure the per-row cost first
    const std::size_t before = memory_stats(kCPU).current;
    reset_peak_memory(kCPU);
    const Tensor out = nt.attribute(x, t).values;
    *peak_delta = memory_stats(kCPU).peak - before;
    return out;
  };
  std::size_t bounded_peak = 0, free_peak = 0;
  const Tensor bounded = run(kBudget, &bounded_peak);
  const Tensor unbounded = run(std::size_t{2} << 30, &free_peak);
  std::printf("[   stat   ] peak live storage: %.1f MB with a 4 MB budget, %.1f MB with 2 GB\n",
              bounded_peak / 1048576.0,
              free_peak / 1048576.0);
  // The budget bounds one gradient call; the noisy inputs and the running sums (a few MB here) sit
  // outside it.
  constexpr std::size_t kOutside = std::size_t{4} << 20;
  EXPECT_LE(bounded_peak, kBudget + kOutside);
  EXPECT_LE(free_peak, attr::preferred_chunk_bytes(kCPU) + kOutside);
  EXPECT_GT(free_peak, bounded_peak);
  EXPECT_TRUE(gradlens::testing::allclose(bounded, unbounded, 1e-4, 1e-7));
}
