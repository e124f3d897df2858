// GuidedBackprop and Deconvolution against Captum on the PUBLIC images, a hand-computed toy with a
// relu op applied twice as plain calls, and batching invariance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gradlens/attr/deconvolution.h"
#include "gradlens/attr/gradient.h"
#include "gradlens/attr/guided_backprop.h"
#include "gradlens/autograd/ops.h"
#include "tests/attr/reference.h"

using namespace gradlens;
using gradlens::testing::allclose;
using gradlens::testing::matches_reference;
using gradlens::testing::max_abs_diff;
using gradlens::testing::report_difference;

namespace {

// f(x) = c . relu(w * relu(x)) on rows of 4 features: one relu op used twice, as plain calls.
attr::ForwardFn relu_twice() {
  return [](const Tensor& x) {
    const Tensor w = Tensor::from_vector({2, 1, 3, -1}, {4});
    const Tensor c = Tensor::from_vector({1, -1, 2, 1}, {1, 4});
    return linear(relu(mul(relu(x), w)), c);
  };
}

}  // namespace

TEST(GuidedBackprop, MatchesCaptumOnThePublicImages) {
  GRADLENS_PUBLIC_SET(set);
  attr::GuidedBackprop gbp(set->forward);
  EXPECT_TRUE(matches_reference("guided_backprop",
                                gbp.attribute(set->inputs, set->labels).values,
                                set->attributions.tensor("guided_backprop"),
                                7e-7));
  attr::Deconvolution deconv(set->forward);
  EXPECT_TRUE(matches_reference("deconvolution",
                                deconv.attribute(set->inputs, set->labels).values,
                                set->attributions.tensor("deconvolution"),
                                2e-6));
}

TEST(GuidedBackprop, RulesApplyToEveryReluOpByHand) {
  // x = [1, 3, -1, 2]: relu(x) = [1, 3, 0, 2], z = w * relu(x) = [2, 3, 0, -2].
  // Plain gradient c * relu'(z) * w * relu'(x) = [2, -1, 0, 0].
  // GuidedBackprop: outer relu(c * relu'(z)) = [1, 0, 0, 0], times w, inner relu(. * relu'(x)):
  // [2, 0, 0, 0]. Deconvolution: outer relu(c) = [1, 0, 2, 1], times w = [2, 0, 6, -1], inner relu:
  // [2, 0, 6, 0].
  const Tensor x = Tensor::from_vector({1, 3, -1, 2}, {1, 4});
  const std::int64_t target = 0;
  EXPECT_TRUE(allclose(attr::compute_gradients(relu_twice(), x, std::span(&target, 1)),
                       Tensor::from_vector({2, -1, 0, 0}, {1, 4}),
                       0,
                       1e-6));
  attr::GuidedBackprop gbp(relu_twice());
  EXPECT_TRUE(allclose(gbp.attribute(x, std::span(&target, 1)).values,
                       Tensor::from_vector({2, 0, 0, 0}, {1, 4}),
                       0,
                       1e-6));
  attr::Deconvolution deconv(relu_twice());
  EXPECT_TRUE(allclose(deconv.attribute(x, std::span(&target, 1)).values,
                       Tensor::from_vector({2, 0, 6, 0}, {1, 4}),
                       0,
                       1e-6));
  EXPECT_FALSE(gbp.has_convergence_delta());
  EXPECT_EQ(gbp.name(), "guided_backprop");
  EXPECT_EQ(deconv.name(), "deconvolution");
  // The rule lives only for the call: plain gradients afterwards.
  EXPECT_TRUE(allclose(attr::compute_gradients(relu_twice(), x, std::span(&target, 1)),
                       Tensor::from_vector({2, -1, 0, 0}, {1, 4}),
                       0,
                       1e-6));
}

TEST(GuidedBackprop, BatchingAndChunkingDoNotChangeTheResult) {
  GRADLENS_PUBLIC_SET(set);
  attr::GuidedBackprop gbp(set->forward);
  attr::Deconvolution deconv(set->forward);
  for (attr::Attribution* method :
       {static_cast<attr::Attribution*>(&gbp), static_cast<attr::Attribution*>(&deconv)}) {
    const Tensor all = method->attribute(set->inputs, set->labels).values;
    for (std::int64_t i = 0; i < 16; ++i) {
      const std::int64_t target = set->labels[static_cast<std::size_t>(i)];
      const Tensor one =
          method->attribute(slice(set->inputs, i, i + 1), std::span(&target, 1)).values;
      EXPECT_TRUE(allclose(one, slice(all, i, i + 1), 0, 1e-6)) << method->name() << " image " << i;
    }
    method->batching().set_max_rows(3);
    EXPECT_TRUE(allclose(method->attribute(set->inputs, set->labels).values, all, 0, 1e-6))
        << method->name();
  }
}
