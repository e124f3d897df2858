// The memory budget: a NoiseTunnel over IG whose whole batch would need hundreds of MB runs in
// chunks whose live storage stays within the budget the user set, with the same result; and the
// budget is a ceiling, not a target: on the CPU chunks stay cache-sized under a large one.
#include <gtest/gtest.h>

#include "gradlens/attr/batching.h"
#include "gradlens/attr/gradient_shap.h"
#include "gradlens/attr/integrated_gradients.h"
#include "gradlens/attr/noise_tunnel.h"
#include "gradlens/attr/saliency.h"
#include "gradlens/autograd/hooks.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/autograd/storage.h"
#include "gradlens/nn/lenet.h"
#include "tests/attr/reference.h"
#include "tests/testing.h"

using namespace gradlens;

TEST(Batching, PeakMemoryStaysWithinTheBudget) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor x = slice(set->inputs, 0, 2);
  const std::vector<std::int64_t> t(set->labels.begin(), set->labels.begin() + 2);
  // 2 images x 20 samples x 50 steps: ~300 MB unchunked. A budget below the preferred chunk (a
  // core's L2, 2 to 16 MiB) so that it, not the cache size, bounds the chunks.
  const std::size_t kBudget = attr::preferred_chunk_bytes(kCPU) / 4;

  auto run = [&](std::size_t budget, std::size_t* peak_delta) {
    attr::IntegratedGradients ig(set->forward);
    attr::NoiseTunnel nt(
        ig,
        {.type = attr::NoiseTunnelType::SmoothGradSq, .nt_samples = 20, .stdevs = 0.2f, .seed = 5});
    nt.base().batching().set_memory_budget(budget);  // the tunnel's own copy of ig
    nt.base().batching().chunk_rows(set->forward, {3, 32, 32}, kCPU);  // the per-row probe first
    const std::size_t before = memory_stats(kCPU).current;
    reset_peak_memory(kCPU);
    const Tensor out = nt.attribute(x, t).values;
    *peak_delta = memory_stats(kCPU).peak - before;
    return out;
  };
  std::size_t bounded_peak = 0, free_peak = 0;
  const Tensor bounded = run(kBudget, &bounded_peak);
  const Tensor unbounded = run(std::size_t{2} << 30, &free_peak);
  std::printf("[   stat   ] peak live storage: %.1f MB with a %.1f MB budget, %.1f MB with 2 GB\n",
              bounded_peak / 1048576.0,
              kBudget / 1048576.0,
              free_peak / 1048576.0);
  // The budget bounds one gradient call; the noisy inputs and the running sums (a few MB here) sit
  // outside it.
  constexpr std::size_t kOutside = std::size_t{4} << 20;
  EXPECT_LE(bounded_peak, kBudget + kOutside);
  EXPECT_LE(free_peak, attr::preferred_chunk_bytes(kCPU) + kOutside);
  EXPECT_GT(free_peak, bounded_peak);
  EXPECT_TRUE(gradlens::testing::allclose(bounded, unbounded, 1e-4, 1e-7));
}

TEST(Batching, NoiseTunnelOverIgOn2000ImagesStaysWithinTheBudgetAndEqualsOneImageAtATime) {
  // 2,000 images, 2 samples x 4 steps each: 16,000 gradient rows (hundreds of MB at once). Under a
  // 64 MB budget the live storage beyond the inputs stays within the budget plus the results
  // (values, and their parts before they are joined): images are taken in groups.
  nn::Net net(3);
  const attr::ForwardFn forward = [&net](const Tensor& x) { return net(x); };
  const std::int64_t n = 2000;
  const Tensor x = gradlens::testing::random_tensor({n, 3, 32, 32}, 21);
  std::vector<std::int64_t> t(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) t[static_cast<std::size_t>(i)] = (i * 7) % 10;
  constexpr std::size_t kBudget = std::size_t{64} << 20;
  const attr::NoiseTunnelOptions options{
      .type = attr::NoiseTunnelType::SmoothGrad, .nt_samples = 2, .stdevs = 0.2f, .seed = 3};
  attr::IntegratedGradients ig(forward, {.n_steps = 4});
  ig.batching().set_memory_budget(kBudget);
  attr::NoiseTunnel nt(ig, options);
  nt.batching().set_memory_budget(kBudget);
  nt.base().batching().chunk_rows(forward, {3, 32, 32}, kCPU);  // the probe, outside the peak
  const std::size_t before = memory_stats(kCPU).current;
  reset_peak_memory(kCPU);
  const Tensor all = nt.attribute(x, t).values;
  const std::size_t peak = memory_stats(kCPU).peak - before;
  const std::size_t results = 2 * static_cast<std::size_t>(x.numel()) * sizeof(float);
  std::printf(
      "[   stat   ] peak live storage beyond the inputs: %.1f MB (budget 64 MB, results "
      "%.1f MB)\n",
      peak / 1048576.0,
      results / 1048576.0);
  EXPECT_LE(peak, kBudget + results);

  std::vector<Tensor> singles;
  for (std::int64_t i = 0; i < n; ++i) {
    attr::NoiseTunnelOptions one = options;
    one.image_ids = {i};
    attr::NoiseTunnel single(ig, one);
    singles.push_back(
        single.attribute(slice(x, i, i + 1), std::span(&t[static_cast<std::size_t>(i)], 1)).values);
  }
  EXPECT_TRUE(gradlens::testing::allclose(all, cat(singles), 1e-5, 1e-7));
}

TEST(Batching, ConcurrentGroupsJoinInOrderAndRethrowTheFirstError) {
  gradlens::testing::ThreadCount two(2);
  const auto part = [](std::int64_t b, std::int64_t e) {
    attr::Attributions a;
    std::vector<float> v;
    for (std::int64_t i = b; i < e; ++i) v.push_back(static_cast<float>(i));
    a.values = Tensor::from_vector(v, {e - b});
    return a;
  };
  const Tensor joined = attr::attribute_in_groups(10, 3, part, 2).values;
  EXPECT_EQ(joined.to_vector(), std::vector<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  const auto failing = [&](std::int64_t b, std::int64_t e) {
    if (b >= 3) throw std::runtime_error("group at " + std::to_string(b));
    return part(b, e);
  };
  try {
    attr::attribute_in_groups(10, 3, failing, 2);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "group at 3");  // the lowest failing group, whichever thread ran it
  }
  // Under a backward rule (thread-local) or on a budget of one chunk, groups run one at a time.
  attr::BatchPlanner planner;
  planner.set_concurrency(0);
  planner.set_memory_budget(attr::preferred_chunk_bytes(kCPU));
  EXPECT_EQ(planner.concurrency(kCPU), 1);
  planner.set_memory_budget(0);
  EXPECT_EQ(planner.concurrency(kCPU), 2);
  {
    const BackwardOverrideGuard rule(Ops::relu, nullptr);
    EXPECT_EQ(planner.concurrency(kCPU), 1);
  }
}

// Many draws of one image under a small budget: NoiseTunnel's samples (with nt_samples_batch_size
// 0, "all at once") and GradientShap's are cut into parts that fit, and the result is the same as
// in one part up to the order of the sum over samples.
TEST(Batching, ManyNoiseTunnelAndGradientShapDrawsStayWithinTheBudget) {
  nn::Net net(4);
  const attr::ForwardFn forward = [&net](const Tensor& x) { return net(x); };
  const Tensor x = gradlens::testing::random_tensor({2, 3, 32, 32}, 8);
  const std::vector<std::int64_t> t = {3, 8};
  const Tensor baselines = gradlens::testing::random_tensor({5, 3, 32, 32}, 9);
  constexpr std::size_t kBudget = std::size_t{2} << 20;  // ~40 rows of inputs at 6 copies a row
  constexpr std::int64_t kDraws = 3000;                  // 2 x 3000 rows: ~70 MB at once
  auto peak_of = [&](attr::Attribution& method, const Tensor& b, Tensor* values) {
    const std::size_t before = memory_stats(kCPU).current;
    reset_peak_memory(kCPU);
    *values = method.attribute(x, t, b).values;
    return memory_stats(kCPU).peak - before;
  };
  auto run_noise_tunnel = [&](std::size_t budget, Tensor* values) {
    attr::Saliency saliency(forward);
    saliency.batching().set_memory_budget(budget);
    attr::NoiseTunnel nt(saliency, {.nt_samples = kDraws, .stdevs = 0.1f, .seed = 2});
    nt.batching().set_memory_budget(budget);
    return peak_of(nt, Tensor(), values);
  };
  auto run_gradient_shap = [&](std::size_t budget, Tensor* values) {
    attr::GradientShap gs(forward, {.n_samples = kDraws, .seed = 2});
    gs.batching().set_memory_budget(budget);
    return peak_of(gs, baselines, values);
  };
  Tensor nt_small, nt_large, gs_small, gs_large;
  const std::size_t nt_peak = run_noise_tunnel(kBudget, &nt_small);
  const std::size_t gs_peak = run_gradient_shap(kBudget, &gs_small);
  run_noise_tunnel(std::size_t{1} << 30, &nt_large);
  run_gradient_shap(std::size_t{1} << 30, &gs_large);
  std::printf(
      "[   stat   ] peak live storage under a 2 MB budget, 2 x 3000 draws: NoiseTunnel "
      "%.1f MB, GradientShap %.1f MB\n",
      nt_peak / 1048576.0,
      gs_peak / 1048576.0);
  // The budget bounds a chunk; the running sums and the per-row draws (a few 10 KB) sit outside.
  constexpr std::size_t kOutside = std::size_t{1} << 20;
  EXPECT_LE(nt_peak, kBudget + kOutside);
  EXPECT_LE(gs_peak, kBudget + kOutside);
  EXPECT_TRUE(gradlens::testing::allclose(nt_small, nt_large, 1e-4, 1e-6));
  EXPECT_TRUE(gradlens::testing::allclose(gs_small, gs_large, 1e-4, 1e-6));
}
