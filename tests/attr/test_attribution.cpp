// The Attribution base as a library user meets it: a Module is held by reference, never copied;
// targets come as an integer, a list, a vector of any integer type, a span or a tensor.
#include <gtest/gtest.h>

#include <stdexcept>
#include <type_traits>
#include <vector>

#include "gradlens/attr/saliency.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/nn/lenet.h"
#include "tests/testing.h"

using namespace gradlens;

static_assert(std::is_constructible_v<attr::ForwardFn, nn::Net&>);
static_assert(!std::is_constructible_v<attr::ForwardFn, nn::Net&&>,
              "a temporary model would be gone before the first call");

TEST(Attribution, AModuleIsHeldByReferenceNotCopied) {
  nn::Net net(7);
  attr::Saliency saliency(net);  // compiles, and follows the net it was given
  const Tensor x = gradlens::testing::random_tensor({2, 3, 32, 32}, 3);
  const Tensor before = saliency.attribute(x, 1).values;
  net.fc3->weight.fill_(0.f);  // class 1's logit no longer depends on the input
  const Tensor after = saliency.attribute(x, 1).values;
  EXPECT_FALSE(gradlens::testing::allclose(before, after, 0, 0));
  EXPECT_EQ(after.to_vector(), std::vector<float>(after.to_vector().size(), 0.f));
}

TEST(Attribution, TargetsComeInEveryShapeAUserHas) {
  nn::Net net(7);
  attr::Saliency saliency(net);
  const Tensor x = gradlens::testing::random_tensor({2, 3, 32, 32}, 3);
  const std::vector<std::int64_t> expected_targets = {4, 9};
  const Tensor expected = saliency.attribute(x, expected_targets).values;
  const auto same = [&](const attr::Targets& t) {
    return gradlens::testing::allclose(saliency.attribute(x, t).values, expected, 0, 0);
  };
  EXPECT_TRUE(same({4, 9}));
  EXPECT_TRUE(same(std::vector<int>{4, 9}));
  EXPECT_TRUE(same(std::span<const std::int64_t>(expected_targets)));
  EXPECT_TRUE(same(Tensor::from_vector({4.f, 9.f}, {2})));
  // One integer for every row.
  const Tensor all_three = saliency.attribute(x, 3).values;
  EXPECT_TRUE(gradlens::testing::allclose(
      all_three, saliency.attribute(x, std::vector<std::int64_t>{3, 3}).values, 0, 0));
  EXPECT_THROW(attr::Targets(Tensor::from_vector({1.5f}, {1})), std::invalid_argument);
  EXPECT_THROW(attr::Targets(Tensor::zeros({2, 2})), std::invalid_argument);
}
