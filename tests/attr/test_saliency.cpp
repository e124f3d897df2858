// Saliency against Captum on the PUBLIC images, against finite differences, and batching.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "gradlens/attr/saliency.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"
#include "tests/attr/reference.h"

using namespace gradlens;
using gradlens::testing::allclose;
using gradlens::testing::matches_reference;
using gradlens::testing::max_abs_diff;
using gradlens::testing::report_difference;

TEST(Saliency, MatchesCaptumOnThePublicImages) {
  GRADLENS_PUBLIC_SET(set);
  for (const bool abs : {true, false}) {
    const char* key = abs ? "saliency" : "saliency_signed";
    attr::Saliency saliency(set->forward, {.abs = abs});
    const auto result = saliency.attribute(set->inputs, set->labels);
    EXPECT_FALSE(result.delta.defined());
    const Tensor expected = set->attributions.tensor(key);
    EXPECT_TRUE(allclose(result.values, expected, 0, 2e-6)) << key;  // README: atol 2e-6
    std::printf(
        "[   stat   ] %s: max|diff| vs Captum %.3g\n", key, max_abs_diff(result.values, expected));
  }
}

TEST(Saliency, EqualsTheAbsoluteFiniteDifferenceGradient) {
  GRADLENS_PUBLIC_SET(set);
  attr::Saliency saliency(set->forward);
  constexpr float kEps = 1e-2f;
  constexpr int kCoords = 48;
  for (const std::int64_t image : {3, 11}) {
    const Tensor x = slice(set->inputs, image, image + 1);
    const std::int64_t target = set->labels[static_cast<std::size_t>(image)];
    const auto attr = saliency.attribute(x, std::span(&target, 1)).values.to_vector();
    // The coordinates with the largest gradients (where a relative bound means something) and
    // random ones; x and all perturbed copies go through the net as one batch.
    std::vector<std::size_t> coords(attr.size());
    for (std::size_t k = 0; k < coords.size(); ++k) coords[k] = k;
    std::partial_sort(
        coords.begin(), coords.begin() + kCoords / 2, coords.end(), [&](auto a, auto b) {
          return attr[a] > attr[b];
        });
    std::mt19937_64 gen(static_cast<std::uint64_t>(image));
    std::shuffle(coords.begin() + kCoords / 2, coords.end(), gen);
    coords.resize(kCoords);
    const auto base = x.to_vector();
    std::vector<float> batch = base;
    for (const std::size_t k : coords) {
      for (const float sign : {1.f, -1.f}) {
        auto row = base;
        row[k] += sign * kEps;
        batch.insert(batch.end(), row.begin(), row.end());
      }
    }
    NoGradGuard no_grad;
    const auto logits =
        set->forward(Tensor::from_vector(batch, {2 * kCoords + 1, 3, 32, 32})).to_vector();
    const auto f = [&](int row) {  // in double from here on
      return static_cast<double>(logits[static_cast<std::size_t>(row * 10 + target)]);
    };
    int checked = 0;
    for (int c = 0; c < kCoords; ++c) {
      const std::size_t k = coords[static_cast<std::size_t>(c)];
      const double forward = (f(2 * c + 1) - f(0)) / kEps, backward = (f(0) - f(2 * c + 2)) / kEps;
      // The Net is piecewise linear: where no ReLU or max-pool switches within +-eps the one-sided
      // differences agree and the central one is the gradient; elsewhere it is not (ggml skips
      // such points too).
      if (std::fabs(forward - backward) >
          1e-2 * std::max(std::fabs(forward), std::fabs(backward)) + 1e-3)
        continue;
      ++checked;
      const double fd = std::fabs((f(2 * c + 1) - f(2 * c + 2)) / (2.0 * kEps));
      // 1e-2 relative; the 1e-3 floor covers float32 rounding of the logits (~1e-6 / 2 eps).
      EXPECT_NEAR(attr[k], fd, 1e-2 * fd + 1e-3) << "image " << image << ", element " << k;
    }
    EXPECT_GE(checked, kCoords / 2) << "image " << image << ": too many kinks within eps";
    std::printf(
        "[   stat   ] saliency vs finite differences, image %lld: %d of %d coordinates away from "
        "kinks\n",
        static_cast<long long>(image),
        checked,
        kCoords);
  }
}

TEST(Saliency, OneBatchEqualsSingleImageCallsAndChunks) {
  GRADLENS_PUBLIC_SET(set);
  attr::Saliency saliency(set->forward, {.abs = false});
  const Tensor all = saliency.attribute(set->inputs, set->labels).values;
  for (std::int64_t i = 0; i < 16; ++i) {
    const std::int64_t target = set->labels[static_cast<std::size_t>(i)];
    const Tensor one =
        saliency.attribute(slice(set->inputs, i, i + 1), std::span(&target, 1)).values;
    EXPECT_TRUE(allclose(one, slice(all, i, i + 1), 0, 1e-6)) << "image " << i;
  }
  attr::Saliency chunked(set->forward, {.abs = false});
  chunked.batching().set_max_rows(5);  // 5 + 5 + 5 + 1 rows
  EXPECT_TRUE(allclose(chunked.attribute(set->inputs, set->labels).values, all, 0, 1e-6));
}

TEST(Saliency, OneTargetForAllRowsAndErrors) {
  GRADLENS_PUBLIC_SET(set);
  attr::Saliency saliency(set->forward);
  const Tensor x = slice(set->inputs, 0, 4);
  const std::int64_t target = 7;
  const std::vector<std::int64_t> sevens(4, 7);
  EXPECT_TRUE(allclose(saliency.attribute(x, std::span(&target, 1)).values,
                       saliency.attribute(x, sevens).values,
                       0,
                       0));
  const std::vector<std::int64_t> three(3, 0);
  EXPECT_THROW(saliency.attribute(x, three), std::invalid_argument);
  EXPECT_THROW(saliency.attribute(Tensor(), three), std::invalid_argument);
  EXPECT_EQ(saliency.name(), "saliency");
  EXPECT_FALSE(saliency.has_convergence_delta());
}
