// IntegratedGradients against Captum on the PUBLIC images, plus completeness and batching.
#include <gtest/gtest.h>

#include <cmath>

#include "gradlens/attr/integrated_gradients.h"
#include "gradlens/autograd/ops.h"
#include "tests/attr/reference.h"

using namespace gradlens;
using gradlens::testing::allclose;

TEST(IntegratedGradients, QuadratureMatchesCaptum) {
  GRADLENS_PUBLIC_SET(set);
  const std::vector<std::pair<const char*, int>> cases = {{"gausslegendre", 50},
                                                          {"riemann_trapezoid", 20},
                                                          {"riemann_left", 20},
                                                          {"riemann_right", 20},
                                                          {"riemann_middle", 20}};
  for (const auto& [method, n] : cases) {
    const std::string key = std::string("ig_") + method + "_" + std::to_string(n);
    const auto q = attr::quadrature(attr::parse_approximation(method), n);
    const auto alphas = set->attributions.float64s(key + ".alphas");
    const auto steps = set->attributions.float64s(key + ".step_sizes");
    for (int i = 0; i < n; ++i) {
      // Captum uses both as float32. NOTE: torch.linspace's float32 rounding is not reproduced
      // bit for bit (its vectorised kernel rounds some points differently), so alphas may differ by
      // one float32 ulp; the attributions still match within the reference tolerance.
      EXPECT_NEAR(q.alphas[i], alphas[i], 1.2e-7 * std::max(1e-3, alphas[i]))
          << key << " alpha " << i;
      EXPECT_EQ(static_cast<float>(q.weights[i]), static_cast<float>(steps[i]))
          << key << " step " << i;
    }
  }
}

TEST(IntegratedGradients, MatchesCaptumOnThePublicImages) {
  GRADLENS_PUBLIC_SET(set);
  struct Case {
    const char* method;
    int n;
    double atol, delta_atol;
  };
  const Case cases[] = {{"gausslegendre", 50, 3e-4, 3e-5},
                        {"riemann_trapezoid", 20, 5e-7, 4e-5},
                        {"riemann_left", 20, 5e-7, 3e-5},
                        {"riemann_right", 20, 7e-7, 3e-5},
                        {"riemann_middle", 20, 5e-7, 3e-5}};
  for (const auto& c : cases) {
    const std::string key = std::string("ig_") + c.method + "_" + std::to_string(c.n);
    attr::IntegratedGradients ig(set->forward,
                                 {.n_steps = c.n, .method = attr::parse_approximation(c.method)});
    const auto result = ig.attribute(set->inputs, set->labels);
    EXPECT_TRUE(allclose(result.values, set->attributions.tensor(key), 0, c.atol)) << key;
    EXPECT_TRUE(allclose(result.delta, set->attributions.tensor(key + ".delta"), 0, c.delta_atol))
        << key;
  }
}

TEST(IntegratedGradients, CompletenessHoldsWithinTheReportedDeltaWhichFallsWithSteps) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor x = slice(set->inputs, 0, 8);
  const std::vector<std::int64_t> t(set->labels.begin(), set->labels.begin() + 8);
  const auto f = [&](const Tensor& in) { return pick((*set->net)(in), t).to_vector(); };
  const auto fx = f(x), f0 = f(Tensor::zeros(x.shape()));
  double previous = 1e9;
  for (int n : {5, 25, 125}) {
    attr::IntegratedGradients ig(set->forward,
                                 {.n_steps = n, .method = attr::Approximation::RiemannTrapezoid});
    const auto result = ig.attribute(x, t);
    const auto attr = result.values.to_vector();
    const auto delta = result.delta.to_vector();
    double mean_gap = 0;
    for (std::size_t i = 0; i < 8; ++i) {
      double total = 0;
      for (std::size_t k = 0; k < 3072; ++k) total += attr[i * 3072 + k];
      // sum(attributions) = f(x) - f(b) + delta, with the delta the method reports
      EXPECT_NEAR(total, fx[i] - f0[i] + delta[i], 1e-4) << "image " << i << ", n_steps " << n;
      mean_gap += std::fabs(delta[i]) / 8;
    }
    EXPECT_LT(mean_gap, previous) << "n_steps " << n;
    previous = mean_gap;
  }
}

TEST(IntegratedGradients, ChunkingAndBatchingDoNotChangeTheResult) {
  GRADLENS_PUBLIC_SET(set);
  attr::IntegratedGradients whole(set->forward);
  const auto all = whole.attribute(set->inputs, set->labels);
  attr::IntegratedGradients chunked(set->forward);
  chunked.batching().set_max_rows(37);  // odd chunk: 2 steps of 16 images per gradient call
  EXPECT_TRUE(allclose(chunked.attribute(set->inputs, set->labels).values, all.values, 0, 1e-6));
  for (std::int64_t i : {3, 15}) {
    const std::int64_t target = set->labels[static_cast<std::size_t>(i)];
    const auto one = whole.attribute(slice(set->inputs, i, i + 1), std::span(&target, 1));
    EXPECT_TRUE(allclose(one.values, slice(all.values, i, i + 1), 0, 1e-6)) << "image " << i;
  }
}

TEST(IntegratedGradients, ConcurrentChunksGiveTheSameResultAsOneAtATime) {
  // set_concurrency(0) runs groups of images one a CPU thread, each with its kernels inline;
  // every image's sum over steps is the same sequence either way, so the result is bit for bit.
  GRADLENS_PUBLIC_SET(set);
  gradlens::testing::ThreadCount two(2);
  attr::IntegratedGradients serial(set->forward);
  serial.batching().set_max_rows(100);  // two images a chunk: 8 groups
  const auto expected = serial.attribute(set->inputs, set->labels);
  attr::IntegratedGradients concurrent(set->forward);
  concurrent.batching().set_max_rows(100);
  concurrent.batching().set_concurrency(0);
  EXPECT_EQ(concurrent.batching().concurrency(kCPU), 2);
  const auto got = concurrent.attribute(set->inputs, set->labels);
  EXPECT_TRUE(allclose(got.values, expected.values, 0, 0));
  EXPECT_TRUE(allclose(got.delta, expected.delta, 0, 0));
  // And one image alone gives its row of the batch exactly: every chunk holds all its steps.
  const std::int64_t target = set->labels[5];
  const auto one = serial.attribute(slice(set->inputs, 5, 6), std::span(&target, 1));
  EXPECT_TRUE(allclose(one.values, slice(expected.values, 5, 6), 0, 0));
}

TEST(IntegratedGradients, OneImagesChunksOfStepsRunConcurrentlyWithTheSameResult) {
  // One image, its 50 steps in 7 chunks of 8 (the last of 2): concurrently, the chunks run one a
  // thread and are summed in order afterwards, so the result is bit for bit the serial one.
  GRADLENS_PUBLIC_SET(set);
  gradlens::testing::ThreadCount two(2);
  const Tensor image = slice(set->inputs, 7, 8);
  const std::int64_t target = set->labels[7];
  attr::IntegratedGradients serial(set->forward);
  serial.batching().set_max_rows(8);
  const auto expected = serial.attribute(image, std::span(&target, 1));
  attr::IntegratedGradients concurrent(set->forward);
  concurrent.batching().set_max_rows(8);
  concurrent.batching().set_concurrency(0);
  ASSERT_EQ(concurrent.batching().concurrency(kCPU), 2);
  const auto got = concurrent.attribute(image, std::span(&target, 1));
  EXPECT_TRUE(allclose(got.values, expected.values, 0, 0));
  EXPECT_TRUE(allclose(got.delta, expected.delta, 0, 0));
}
