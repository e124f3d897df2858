// LRP (epsilon rule) against Captum on the PUBLIC images, a hand-computed two-layer toy with a bias
// that absorbs relevance, and batching invariance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gradlens/attr/lrp.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/nn/lenet.h"
#include "tests/attr/reference.h"

using namespace gradlens;
using gradlens::testing::allclose;
using gradlens::testing::matches_reference;
using gradlens::testing::max_abs_diff;
using gradlens::testing::report_difference;

TEST(LRP, MatchesCaptumOnThePublicImages) {
  GRADLENS_PUBLIC_SET(set);
  attr::LRP lrp(set->forward);
  const auto result = lrp.attribute(set->inputs, set->labels);
  EXPECT_TRUE(matches_reference("lrp", result.values, set->attributions.tensor("lrp"), 9e-7));
  EXPECT_TRUE(
      matches_reference("lrp.delta", result.delta, set->attributions.tensor("lrp.delta"), 3e-5));
}

TEST(LRP, EpsilonRuleByHand) {
  // x = [1, 2]; z1 = W1 x + b1 = [3, 1]; a1 = relu(z1); f = W2 a1 + b2 = 3 + 2 + 1 = 6.
  // Output relevance f = 6; layer 2: R_j = a1_j W2_j / z2 * 6 = [3, 2] (the bias keeps 1);
  // layer 1: R_i = sum_j x_i W1_ji / z1_j * R_j = [1 + 4, 2 - 4] = [5, -2]; delta = 6 - 3 = 3.
  const auto forward = [](const Tensor& x) {
    const Tensor w1 = Tensor::from_vector({1, 1, 2, -1}, {2, 2});
    const Tensor b1 = Tensor::from_vector({0, 1}, {2});
    const Tensor w2 = Tensor::from_vector({1, 2}, {1, 2});
    const Tensor b2 = Tensor::from_vector({1}, {1});
    return linear(relu(linear(x, w1, b1)), w2, b2);
  };
  const std::int64_t target = 0;
  attr::LRP lrp(forward);
  const auto result = lrp.attribute(Tensor::from_vector({1, 2}, {1, 2}), std::span(&target, 1));
  EXPECT_TRUE(allclose(result.values, Tensor::from_vector({5, -2}, {1, 2}), 0, 1e-5));
  EXPECT_NEAR(result.delta.item(), 3.f, 1e-5);
  EXPECT_TRUE(lrp.has_convergence_delta());
  EXPECT_EQ(lrp.name(), "lrp");
}

TEST(LRP, MaxPoolSendsRelevanceToTheFirstMaximum) {
  // relu then 2x2 max-pool on [[2, 5], [5, 1]]: the pooled 5 is the first maximum (index 1), which
  // takes all the relevance 5 * 5 / (5 + eps) ~ 5; the relu passes it unchanged.
  const auto forward = [](const Tensor& x) {
    return reshape(max_pool2d(relu(x), 2), {x.size(0), 1});
  };
  const std::int64_t target = 0;
  attr::LRP lrp(forward);
  const auto result =
      lrp.attribute(Tensor::from_vector({2, 5, 5, 1}, {1, 1, 2, 2}), std::span(&target, 1));
  EXPECT_TRUE(allclose(result.values, Tensor::from_vector({0, 5, 0, 0}, {1, 1, 2, 2}), 0, 1e-5));
  EXPECT_NEAR(result.delta.item(), 0.f, 1e-5);
}

TEST(LRP, BatchingAndChunkingDoNotChangeTheResult) {
  GRADLENS_PUBLIC_SET(set);
  attr::LRP lrp(set->forward);
  const auto all = lrp.attribute(set->inputs, set->labels);
  for (std::int64_t i = 0; i < 16; ++i) {
    const std::int64_t target = set->labels[static_cast<std::size_t>(i)];
    const auto one = lrp.attribute(slice(set->inputs, i, i + 1), std::span(&target, 1));
    EXPECT_TRUE(allclose(one.values, slice(all.values, i, i + 1), 0, 1e-6)) << "image " << i;
    EXPECT_NEAR(one.delta.item(), all.delta.to_vector()[static_cast<std::size_t>(i)], 1e-5);
  }
  lrp.batching().set_max_rows(3);
  const auto parts = lrp.attribute(set->inputs, set->labels);
  EXPECT_TRUE(allclose(parts.values, all.values, 0, 1e-6));
  EXPECT_TRUE(allclose(parts.delta, all.delta, 0, 1e-5));
}

TEST(LRP, AnOpWithNoRuleIsAnErrorNamingIt) {
  nn::Net net(2);
  const attr::ForwardFn with_softmax = [&net](const Tensor& x) { return softmax(net(x)); };
  const Tensor x = gradlens::testing::random_tensor({2, 3, 32, 32}, 6);
  attr::LRP strict(with_softmax);
  const std::string message =
      gradlens::testing::invalid_argument_message([&] { strict.attribute(x, 1); });
  EXPECT_NE(message.find("[lrp] op 'softmax' has no lrp rule"), std::string::npos) << message;
  attr::LRP lenient(with_softmax, {.allow_plain_gradient = true});
  EXPECT_EQ(lenient.attribute(x, 1).values.shape(), x.shape());
}
