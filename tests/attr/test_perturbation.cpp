// Occlusion and FeatureAblation against Captum on the PUBLIC images, on a linear toy model with
// known answers (baselines, clipped windows, coverage counts), for perturbations_per_eval and
// batching invariance, and for the shape errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <stdexcept>

#include "gradlens/attr/feature_ablation.h"
#include "gradlens/attr/occlusion.h"
#include "gradlens/autograd/ops.h"
#include "tests/attr/reference.h"

using namespace gradlens;
using gradlens::testing::allclose;
using gradlens::testing::matches_reference;
using gradlens::testing::max_abs_diff;
using gradlens::testing::report_difference;

namespace {

attr::FeatureAblationOptions public_mask(const gradlens::testing::PublicSet& set,
                                         std::int64_t per_eval) {
  return {.feature_mask = set.inputs_file.int64s("feature_mask"),
          .mask_shape = {1, 32, 32},
          .perturbations_per_eval = per_eval};
}

// f(x) = x.flatten(1) @ W^T for a fixed W [2, D]: every perturbation answer is known.
struct LinearToy {
  Tensor weight;
  attr::ForwardFn forward;
  explicit LinearToy(std::int64_t d) : weight(gradlens::testing::random_tensor({2, d}, 7)) {
    forward = [w = weight](const Tensor& x) { return linear(reshape(x, {x.size(0), -1}), w); };
  }
  float w(std::int64_t cls, std::int64_t i) const {
    return weight.to_vector()[static_cast<std::size_t>(cls * weight.size(1) + i)];
  }
};

// Throws std::invalid_argument whose message holds every part.
template <class F>
::testing::AssertionResult throws_with(F&& f, std::initializer_list<const char*> parts) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    for (const char* part : parts)
      if (message.find(part) == std::string::npos)
        return ::testing::AssertionFailure() << "'" << part << "' missing from: " << message;
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no std::invalid_argument";
}

}  // namespace

TEST(Occlusion, MatchesCaptum) {
  GRADLENS_PUBLIC_SET(set);
  attr::Occlusion occlusion(set->forward,
                            {.sliding_window_shapes = {3, 8, 8}, .strides = {3, 4, 4}});
  const Tensor values = occlusion.attribute(set->inputs, set->labels).values;
  const Tensor expected = set->attributions.tensor("occlusion");
  report_difference("occlusion", values, expected);
  EXPECT_TRUE(allclose(values, expected, 0, 3e-5));
  // An explicit zero baseline, scalar or full, is the default.
  EXPECT_TRUE(allclose(
      occlusion.attribute(set->inputs, set->labels, Tensor::scalar(0.f)).values, values, 0, 0));
}

TEST(FeatureAblation, MatchesCaptum) {
  GRADLENS_PUBLIC_SET(set);
  attr::FeatureAblation ablation(set->forward, public_mask(*set, 1));
  const Tensor values = ablation.attribute(set->inputs, set->labels).values;
  const Tensor expected = set->attributions.tensor("feature_ablation");
  report_difference("feature_ablation", values, expected);
  EXPECT_TRUE(allclose(values, expected, 0, 5e-5));
  EXPECT_TRUE(allclose(
      ablation.attribute(set->inputs, set->labels, Tensor::zeros(set->inputs.shape())).values,
      values,
      0,
      0));
}

TEST(Occlusion, PerturbationsPerEvalDoesNotChangeTheResult) {
  GRADLENS_PUBLIC_SET(set);
  const attr::OcclusionOptions one = {.sliding_window_shapes = {3, 8, 8}, .strides = {3, 4, 4}};
  const Tensor reference =
      attr::Occlusion(set->forward, one).attribute(set->inputs, set->labels).values;
  for (std::int64_t per_eval : {7, 64}) {  // 49 windows: 7 full chunks, then one chunk for all
    attr::OcclusionOptions o = one;
    o.perturbations_per_eval = per_eval;
    const Tensor values =
        attr::Occlusion(set->forward, o).attribute(set->inputs, set->labels).values;
    report_difference(
        per_eval == 7 ? "occlusion ppe 7 vs 1" : "occlusion ppe 64 vs 1", values, reference);
    EXPECT_TRUE(allclose(values, reference, 0, 1e-5)) << "perturbations_per_eval " << per_eval;
  }
}

TEST(FeatureAblation, PerturbationsPerEvalDoesNotChangeTheResult) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor reference = attr::FeatureAblation(set->forward, public_mask(*set, 1))
                               .attribute(set->inputs, set->labels)
                               .values;
  const Tensor values = attr::FeatureAblation(set->forward, public_mask(*set, 7))
                            .attribute(set->inputs, set->labels)
                            .values;
  report_difference("feature_ablation ppe 7 vs 1", values, reference);
  EXPECT_TRUE(allclose(values, reference, 0, 1e-5));
}

TEST(Perturbation, BatchedAndSingleImageCallsAgree) {
  GRADLENS_PUBLIC_SET(set);
  attr::Occlusion occlusion(
      set->forward,
      {.sliding_window_shapes = {3, 8, 8}, .strides = {3, 4, 4}, .perturbations_per_eval = 7});
  attr::FeatureAblation ablation(set->forward, public_mask(*set, 7));
  const Tensor occ_all = occlusion.attribute(set->inputs, set->labels).values;
  const Tensor abl_all = ablation.attribute(set->inputs, set->labels).values;
  double occ_worst = 0, abl_worst = 0;
  for (std::int64_t i = 0; i < 16; ++i) {
    const std::int64_t target = set->labels[static_cast<std::size_t>(i)];
    const Tensor x = slice(set->inputs, i, i + 1);
    const Tensor occ = occlusion.attribute(x, std::span(&target, 1)).values;
    const Tensor abl = ablation.attribute(x, std::span(&target, 1)).values;
    occ_worst = std::max(occ_worst, max_abs_diff(occ, slice(occ_all, i, i + 1)));
    abl_worst = std::max(abl_worst, max_abs_diff(abl, slice(abl_all, i, i + 1)));
    EXPECT_TRUE(allclose(occ, slice(occ_all, i, i + 1), 0, 1e-5)) << "occlusion, image " << i;
    EXPECT_TRUE(allclose(abl, slice(abl_all, i, i + 1), 0, 1e-5)) << "ablation, image " << i;
  }
  std::cout << "[   stat   ] batched vs single max|diff|: occlusion " << occ_worst
            << ", feature_ablation " << abl_worst << "\n";
}

TEST(Occlusion, LinearToyHasKnownAnswersWithClippedWindowsAndBaselines) {
  // Rows [1, 5], window [1, 2], stride [1, 2]: ceil(3 / 2) + 1 = 3 windows {0,1}, {2,3}, {4}.
  LinearToy toy(5);
  const Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, -1, 0.5f, 2, -3, 1}, {2, 1, 5});
  const Tensor b = Tensor::from_vector({0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 1, 1, 1, 1, 1}, {2, 1, 5});
  const std::vector<std::int64_t> t = {0, 1};
  for (std::int64_t per_eval : {1, 2, 3}) {
    attr::Occlusion occlusion(
        toy.forward,
        {.sliding_window_shapes = {1, 2}, .strides = {1, 2}, .perturbations_per_eval = per_eval});
    const auto got = occlusion.attribute(x, t, b).values.to_vector();
    const auto xv = x.to_vector(), bv = b.to_vector();
    for (std::int64_t n = 0; n < 2; ++n) {
      const auto term = [&](std::int64_t i) {
        const auto e = static_cast<std::size_t>(n * 5 + i);
        return toy.w(t[static_cast<std::size_t>(n)], i) * (xv[e] - bv[e]);
      };
      const float w01 = term(0) + term(1), w23 = term(2) + term(3), w4 = term(4);
      const std::vector<float> expected = {w01, w01, w23, w23, w4};
      for (std::size_t i = 0; i < 5; ++i)
        EXPECT_NEAR(got[static_cast<std::size_t>(n) * 5 + i], expected[i], 1e-5)
            << "row " << n << " element " << i << " per_eval " << per_eval;
    }
  }
  // Overlapping windows (size 3, stride 1 over 5): each element is the mean over its windows.
  attr::Occlusion overlap(toy.forward, {.sliding_window_shapes = {1, 3}});
  const auto got = overlap.attribute(slice(x, 0, 1), std::span(t.data(), 1)).values.to_vector();
  const auto xv = x.to_vector();
  const auto window = [&](std::int64_t s) {
    float sum = 0;
    for (std::int64_t i = s; i < s + 3; ++i) sum += toy.w(0, i) * xv[static_cast<std::size_t>(i)];
    return sum;
  };
  const std::vector<float> expected = {window(0),
                                       (window(0) + window(1)) / 2,
                                       (window(0) + window(1) + window(2)) / 3,
                                       (window(1) + window(2)) / 2,
                                       window(2)};
  EXPECT_TRUE(allclose(got, expected, 0, 1e-5));
}

TEST(FeatureAblation, LinearToyHasKnownAnswers) {
  LinearToy toy(6);  // rows [2, 3]
  const Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, -1, -2, 0.5f, 0.25f, 3, 2}, {2, 2, 3});
  const std::vector<std::int64_t> t = {1, 0};
  const auto xv = x.to_vector();
  const auto term = [&](std::int64_t n, std::int64_t i, float base) {
    return toy.w(t[static_cast<std::size_t>(n)], i) *
           (xv[static_cast<std::size_t>(n * 6 + i)] - base);
  };
  // No mask: every scalar its own feature -> w_i * (x_i - b), here with a scalar baseline.
  for (std::int64_t per_eval : {1, 4, 100}) {
    attr::FeatureAblation each(toy.forward, {.perturbations_per_eval = per_eval});
    const auto got = each.attribute(x, t, Tensor::scalar(0.5f)).values.to_vector();
    for (std::int64_t n = 0; n < 2; ++n)
      for (std::int64_t i = 0; i < 6; ++i)
        EXPECT_NEAR(got[static_cast<std::size_t>(n * 6 + i)], term(n, i, 0.5f), 1e-6)
            << "row " << n << " element " << i << " per_eval " << per_eval;
  }
  // Mask [1, 3] = ids {7, -2, 7} shared by both channels: features {-2} and {7}; ids need not
  // be contiguous or start at 0.
  attr::FeatureAblation grouped(toy.forward, {.feature_mask = {7, -2, 7}, .mask_shape = {1, 3}});
  const auto got = grouped.attribute(x, t).values.to_vector();
  for (std::int64_t n = 0; n < 2; ++n) {
    const float f7 = term(n, 0, 0) + term(n, 2, 0) + term(n, 3, 0) + term(n, 5, 0);
    const float fm2 = term(n, 1, 0) + term(n, 4, 0);
    const std::vector<float> expected = {f7, fm2, f7, f7, fm2, f7};
    for (std::size_t i = 0; i < 6; ++i)
      EXPECT_NEAR(got[static_cast<std::size_t>(n) * 6 + i], expected[i], 1e-5) << "row " << n;
  }
}

TEST(Perturbation, BadShapesGiveOneClearError) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor x = slice(set->inputs, 0, 2);
  const std::vector<std::int64_t> t = {3, 8};
  const auto occlude = [&](attr::OcclusionOptions o, const Tensor& b = {}) {
    return [&set, &x, &t, o, b] { attr::Occlusion(set->forward, o).attribute(x, t, b); };
  };
  EXPECT_TRUE(throws_with(occlude({.sliding_window_shapes = {8, 8}}),
                          {"[occlusion]", "[8, 8]", "[3, 32, 32]"}));
  EXPECT_TRUE(
      throws_with(occlude({.sliding_window_shapes = {3, 40, 8}}), {"[3, 40, 8]", "[3, 32, 32]"}));
  EXPECT_TRUE(throws_with(occlude({.sliding_window_shapes = {3, 8, 8}, .strides = {3, 9, 4}}),
                          {"[3, 8, 8]", "[3, 9, 4]"}));
  EXPECT_TRUE(throws_with(occlude({.sliding_window_shapes = {3, 8, 8}, .strides = {1, 1}}),
                          {"strides [1, 1]"}));
  EXPECT_TRUE(throws_with(occlude({}), {"sliding_window_shapes []"}));
  EXPECT_TRUE(
      throws_with(occlude({.sliding_window_shapes = {3, 8, 8}}, Tensor::zeros({2, 3, 16, 16})),
                  {"[occlusion] baselines [2, 3, 16, 16]", "[2, 3, 32, 32]"}));
  EXPECT_TRUE(
      throws_with(occlude({.sliding_window_shapes = {3, 8, 8}, .perturbations_per_eval = 0}),
                  {"perturbations_per_eval"}));

  const auto ablate = [&](attr::FeatureAblationOptions o) {
    return [&set, &x, &t, o] { attr::FeatureAblation(set->forward, o).attribute(x, t); };
  };
  const std::vector<std::int64_t> mask1024(1024, 0);
  EXPECT_TRUE(throws_with(ablate({.feature_mask = mask1024, .mask_shape = {2, 32, 32}}),
                          {"[feature_ablation]", "[2, 32, 32]", "1024"}));
  EXPECT_TRUE(throws_with(ablate({.feature_mask = mask1024, .mask_shape = {32, 1, 32}}),
                          {"[32, 1, 32]", "[3, 32, 32]"}));
  EXPECT_TRUE(throws_with(ablate({.feature_mask = mask1024}), {"mask_shape [3, 32, 32]"}));
  EXPECT_TRUE(throws_with(ablate({.mask_shape = {1, 32, 32}}), {"without a feature_mask"}));
  // Captum's own [1, 1, 32, 32] mask is accepted.
  EXPECT_NO_THROW(
      attr::FeatureAblation(set->forward, {.feature_mask = mask1024, .mask_shape = {1, 1, 32, 32}})
          .attribute(x, t));
}
