// InputXGradient against Captum on the PUBLIC images, and its definition x * grad.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gradlens/attr/input_x_gradient.h"
#include "gradlens/attr/saliency.h"
#include "gradlens/autograd/ops.h"
#include "tests/attr/reference.h"

using namespace gradlens;
using gradlens::testing::allclose;

TEST(InputXGradient, MatchesCaptumOnThePublicImages) {
  GRADLENS_PUBLIC_SET(set);
  attr::InputXGradient ixg(set->forward);
  const auto result = ixg.attribute(set->inputs, set->labels);
  EXPECT_FALSE(result.delta.defined());
  const Tensor expected = set->attributions.tensor("input_x_gradient");
  EXPECT_TRUE(allclose(result.values, expected, 0, 9e-7));  // README: atol 9e-7
  const auto a = result.values.to_vector(), e = expected.to_vector();
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - e[i]));
  std::printf("[   stat   ] input_x_gradient: max|diff| vs Captum %.3g\n", worst);
}

TEST(InputXGradient, IsTheInputTimesTheSignedGradientInAnyChunking) {
  GRADLENS_PUBLIC_SET(set);
  attr::Saliency gradient(set->forward, {.abs = false});
  const Tensor expected = mul(set->inputs, gradient.attribute(set->inputs, set->labels).values);
  attr::InputXGradient ixg(set->forward);
  EXPECT_TRUE(allclose(ixg.attribute(set->inputs, set->labels).values, expected, 0, 0));
  ixg.batching().set_max_rows(3);
  EXPECT_TRUE(allclose(ixg.attribute(set->inputs, set->labels).values, expected, 0, 1e-6));
  for (const std::int64_t i : {0, 9}) {
    const std::int64_t target = set->labels[static_cast<std::size_t>(i)];
    EXPECT_TRUE(allclose(ixg.attribute(slice(set->inputs, i, i + 1), std::span(&target, 1)).values,
                         slice(expected, i, i + 1),
                         0,
                         1e-6))
        << "image " << i;
  }
  EXPECT_EQ(ixg.name(), "input_x_gradient");
}
