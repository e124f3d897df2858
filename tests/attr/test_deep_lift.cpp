// DeepLift and DeepLiftShap against Captum on the PUBLIC images, completeness with zero baselines,
// hand-computed toy models (a relu applied twice as plain calls; relu -> max-pool, where Captum's
// hook order decides the answer), and batching invariance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gradlens/attr/deep_lift.h"
#include "gradlens/attr/deep_lift_shap.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/nn/lenet.h"
#include "tests/attr/reference.h"

using namespace gradlens;
using gradlens::testing::allclose;
using gradlens::testing::matches_reference;
using gradlens::testing::max_abs_diff;
using gradlens::testing::report_difference;

namespace {

// Toy model on rows of 4 features: f(x) = c . relu(w * relu(x)); the relu op is used twice, written
// as plain calls (no modules). logits [N, 1].
const std::vector<float> kW = {2.f, 1.f, 3.f, 1.f};
const std::vector<float> kC = {1.f, -0.5f, 2.f, 1.f};
attr::ForwardFn relu_twice() {
  return [](const Tensor& x) {
    const Tensor w = Tensor::from_vector(kW, {4});
    const Tensor c = Tensor::from_vector(kC, {1, 4});
    return linear(relu(mul(relu(x), w)), c);
  };
}

}  // namespace

TEST(DeepLift, MatchesCaptumOnThePublicImages) {
  GRADLENS_PUBLIC_SET(set);
  attr::DeepLift dl(set->forward);
  const Tensor zeros = Tensor::zeros(set->inputs.shape());
  const auto result = dl.attribute(set->inputs, set->labels, zeros);
  EXPECT_TRUE(
      matches_reference("deeplift", result.values, set->attributions.tensor("deeplift"), 9e-6));
  EXPECT_TRUE(matches_reference(
      "deeplift.delta", result.delta, set->attributions.tensor("deeplift.delta"), 3e-5));

  attr::DeepLift local(set->forward, {.multiply_by_inputs = false});
  EXPECT_TRUE(matches_reference("deeplift_no_multiply",
                                local.attribute(set->inputs, set->labels).values,
                                set->attributions.tensor("deeplift_no_multiply"),
                                2e-5));
}

TEST(DeepLiftShap, MatchesCaptumOnThePublicImages) {
  GRADLENS_PUBLIC_SET(set);
  attr::DeepLiftShap shap(set->forward);
  const Tensor baselines = set->inputs_file.tensor("baseline_set");  // [8, 3, 32, 32]
  const auto result = shap.attribute(set->inputs, set->labels, baselines);
  EXPECT_TRUE(matches_reference(
      "deeplift_shap", result.values, set->attributions.tensor("deeplift_shap"), 2e-6));
  ASSERT_EQ(result.delta.shape(), Shape({128}));
  EXPECT_TRUE(matches_reference(
      "deeplift_shap.delta", result.delta, set->attributions.tensor("deeplift_shap.delta"), 5e-5));
}

TEST(DeepLift, SummationToDeltaWithZeroBaselines) {
  GRADLENS_PUBLIC_SET(set);
  const auto check = [&](const Tensor& x, std::span<const std::int64_t> t, const char* what) {
    attr::DeepLift dl(set->forward);
    const auto result = dl.attribute(x, t);
    const std::int64_t n = x.size(0);
    const auto attr = result.values.to_vector();
    const auto delta = result.delta.to_vector();
    const auto fx = pick((*set->net)(x), t).to_vector();
    const auto f0 = pick((*set->net)(Tensor::zeros(x.shape())), t).to_vector();
    const std::size_t row = static_cast<std::size_t>(x.numel() / n);
    double worst = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
      double total = 0;
      for (std::size_t k = 0; k < row; ++k) total += attr[i * row + k];
      const double gap = total - (double(fx[i]) - f0[i]);
      EXPECT_NEAR(gap, 0.0, 1e-4) << what << " image " << i;
      EXPECT_NEAR(delta[i], gap, 1e-5) << what << " image " << i << ": reported delta";
      worst = std::max(worst, std::fabs(gap));
    }
    std::printf("[ %s ] max |sum(attr) - (f(x) - f(0))| = %.3g\n", what, worst);
  };
  check(set->inputs, set->labels, "public");
  const Tensor noise = gradlens::testing::random_tensor({6, 3, 32, 32}, 7);
  const std::vector<std::int64_t> t = {0, 1, 2, 3, 4, 5};
  check(noise, t, "random");
}

TEST(DeepLift, RescaleRuleOnAReluUsedTwiceByHand) {
  // Row 0: x = [1, 3, -1, 2], r = [-1, 1, -2, 2]. Inner relu: d_out / d_in = [1/2, 2/2, 0/1,
  // fallback (x = r)]; outer relu on z = w * relu(.): z_x = [2, 3, 0, 2], z_r = [0, 1, 0, 2]: [2/2,
  // 2/2, fallback (z_x = z_r = 0: relu' = 0), fallback (relu' = 1)]. Multipliers c * m_out * w *
  // m_in = [1, -0.5, 0, 1] (the plain gradient would be [2, -0.5, 0, 1]); attributions (x - r) * m
  // = [2, -1, 0, 0], summing to f(x) - f(r) = 2.5 - 1.5. Row 1: x = r, so the multipliers are the
  // plain gradient c * relu'(z) * w * relu'(x) = [2, -0.5, 6, 0] and the attributions 0.
  const Tensor x = Tensor::from_vector({1, 3, -1, 2, 0.5f, 1, 2, -1}, {2, 4});
  const Tensor r = Tensor::from_vector({-1, 1, -2, 2, 0.5f, 1, 2, -1}, {2, 4});
  const std::int64_t target = 0;
  attr::DeepLift dl(relu_twice());
  const auto result = dl.attribute(x, std::span(&target, 1), r);
  EXPECT_TRUE(
      allclose(result.values, Tensor::from_vector({2, -1, 0, 0, 0, 0, 0, 0}, {2, 4}), 0, 1e-6));
  EXPECT_TRUE(allclose(result.delta, Tensor::from_vector({0, 0}, {2}), 0, 1e-6));
  attr::DeepLift local(relu_twice(), {.multiply_by_inputs = false});
  EXPECT_TRUE(allclose(local.attribute(x, std::span(&target, 1), r).values,
                       Tensor::from_vector({1, -0.5f, 0, 1, 2, -0.5f, 6, 0}, {2, 4}),
                       0,
                       1e-6));
}

TEST(DeepLift, ReluFeedingMaxPoolSeesThePlainPoolGradientAsInCaptum) {
  // x = [[1, 3], [2, 0]], r = [[4, 0], [0, 0]] through relu -> 2x2 max-pool: o_x = 3 (index 1),
  // o_r = 4 (index 0). Captum's relu hook multiplies the PLAIN pool gradient (x's own argmax) by
  // the relu's rescale multiplier (1 here): multipliers [0, 1, 0, 0] (element 3 has x = r and falls
  // back to relu's own backward of the max-pool rule's gradient, 0 at x = 0), attributions [0, 3,
  // 0, 0], and a delta of 3 - (3 - 4) = 4: completeness does not hold, as in Captum with image
  // baselines.
  const Tensor x = Tensor::from_vector({1, 3, 2, 0}, {1, 1, 2, 2});
  const Tensor r = Tensor::from_vector({4, 0, 0, 0}, {1, 1, 2, 2});
  const std::int64_t target = 0;
  attr::DeepLift relu_pool([](const Tensor& in) {
    return reshape(max_pool2d(relu(in), 2), {in.size(0), 1});
  });
  const auto surprise = relu_pool.attribute(x, std::span(&target, 1), r);
  EXPECT_TRUE(allclose(surprise.values, Tensor::from_vector({0, 3, 0, 0}, {1, 1, 2, 2}), 0, 1e-6));
  EXPECT_NEAR(surprise.delta.item(), 4.f, 1e-6);

  // Without the relu the max-pool rule itself runs: delta_out = [xmax - o_r, o_x - xmax] = [0, -1]
  // goes to each half's argmax, the halves are summed ([-1, 0, 0, 0]) and divided by x - r: the
  // multiplier of element 0 is 1/3, the attribution [-1, 0, 0, 0] sums to f(x) - f(r) = -1.
  attr::DeepLift pool_only([](const Tensor& in) {
    return reshape(max_pool2d(in, 2), {in.size(0), 1});
  });
  const auto textbook = pool_only.attribute(x, std::span(&target, 1), r);
  EXPECT_TRUE(allclose(textbook.values, Tensor::from_vector({-1, 0, 0, 0}, {1, 1, 2, 2}), 0, 1e-6));
  EXPECT_NEAR(textbook.delta.item(), 0.f, 1e-6);
}

TEST(DeepLift, BatchingAndChunkingDoNotChangeTheResult) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor baselines = mul_scalar(set->inputs, 0.25f);  // non-trivial per-image baselines
  attr::DeepLift whole(set->forward);
  const auto all = whole.attribute(set->inputs, set->labels, baselines);
  for (std::int64_t i = 0; i < 16; ++i) {
    const std::int64_t target = set->labels[static_cast<std::size_t>(i)];
    const auto one = whole.attribute(
        slice(set->inputs, i, i + 1), std::span(&target, 1), slice(baselines, i, i + 1));
    EXPECT_TRUE(allclose(one.values, slice(all.values, i, i + 1), 0, 1e-6)) << "image " << i;
    EXPECT_NEAR(one.delta.item(), all.delta.to_vector()[static_cast<std::size_t>(i)], 1e-5);
  }
  attr::DeepLift chunked(set->forward);
  chunked.batching().set_max_rows(5);  // 2 pairs per doubled pass, 8 passes
  const auto parts = chunked.attribute(set->inputs, set->labels, baselines);
  EXPECT_TRUE(allclose(parts.values, all.values, 0, 1e-6));
  EXPECT_TRUE(allclose(parts.delta, all.delta, 0, 1e-5));
}

TEST(DeepLiftShap, EqualsDeepLiftWhenEveryBaselineIsTheSame) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor x = slice(set->inputs, 0, 4);
  const std::vector<std::int64_t> t(set->labels.begin(), set->labels.begin() + 4);
  const Tensor b = slice(set->inputs_file.tensor("baseline_set"), 2, 3);  // [1, 3, 32, 32]
  attr::DeepLiftShap shap(set->forward);
  attr::DeepLift dl(set->forward);
  const auto twice = shap.attribute(x, t, cat({b, b, b}));
  const auto once = dl.attribute(x, t, b);
  EXPECT_TRUE(allclose(twice.values, once.values, 0, 1e-6));
  ASSERT_EQ(twice.delta.shape(), Shape({12}));
  const auto d3 = twice.delta.to_vector(), d1 = once.delta.to_vector();
  for (std::size_t r = 0; r < 12; ++r) EXPECT_NEAR(d3[r], d1[r / 3], 1e-5) << "row " << r;
}

TEST(DeepLiftShap, RejectsASingleBaseline) {
  const Tensor x = Tensor::zeros({2, 4});
  const std::int64_t target = 0;
  attr::DeepLiftShap shap(relu_twice());
  EXPECT_THROW(shap.attribute(x, std::span(&target, 1), Tensor::zeros({1, 4})),
               std::invalid_argument);
  EXPECT_THROW(shap.attribute(x, std::span(&target, 1)), std::invalid_argument);
  EXPECT_THROW(shap.attribute(x, std::span(&target, 1), Tensor::zeros({3, 5})),
               std::invalid_argument);
  EXPECT_EQ(shap.name(), "deeplift_shap");
  EXPECT_TRUE(shap.has_convergence_delta());
}

TEST(DeepLift, AnOpWithNoRuleIsAnErrorNamingItUnlessThePlainGradientIsAllowed) {
  // A log_softmax head: Captum's DeepLift takes its plain gradient without a word.
  nn::Net net(2);
  const attr::ForwardFn with_softmax = [&net](const Tensor& x) { return log_softmax(net(x)); };
  const Tensor x = gradlens::testing::random_tensor({2, 3, 32, 32}, 6);
  attr::DeepLift strict(with_softmax);
  const std::string message =
      gradlens::testing::invalid_argument_message([&] { strict.attribute(x, 1); });
  EXPECT_NE(message.find("[deeplift] op 'log_softmax' has no deeplift rule"), std::string::npos)
      << message;
  attr::DeepLift lenient(with_softmax, {.allow_plain_gradient = true});
  EXPECT_EQ(lenient.attribute(x, 1).values.shape(), x.shape());
  // The Net itself is covered: relu and max-pool rules, linear maps, shape ops.
  attr::DeepLift plain_net(net);
  EXPECT_NO_THROW(plain_net.attribute(x, 1));
}
