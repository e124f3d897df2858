// GradientShap against Captum with its saved draws, its delta, batching, draws and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "gradlens/attr/gradient.h"
#include "gradlens/attr/gradient_shap.h"
#include "gradlens/autograd/ops.h"
#include "tests/attr/reference.h"

using namespace gradlens;
using gradlens::testing::allclose;
using gradlens::testing::matches_reference;
using gradlens::testing::max_abs_diff;
using gradlens::testing::report_difference;

namespace {

// Captum's saved draws for `key` (gradient_shap or gradient_shap_noisy).
attr::RandomDraws saved_draws(const gradlens::testing::PublicSet& set, const std::string& key) {
  attr::RandomDraws draws;
  draws.baseline_index = set.stochastic.int64s(key + ".baseline_index");
  const auto alphas = set.stochastic.float64s(key + ".alphas");  // F32 widened: exact
  draws.alphas.assign(alphas.begin(), alphas.end());
  if (set.stochastic.contains(key + ".noise")) draws.noise = set.stochastic.tensor(key + ".noise");
  return draws;
}

// The draws of sample rows [i * n, (i + 1) * n): what a single-image call of image i uses.
attr::RandomDraws slice_draws(const attr::RandomDraws& d, std::int64_t i, std::int64_t n) {
  attr::RandomDraws out;
  const auto b = static_cast<std::ptrdiff_t>(i * n), e = static_cast<std::ptrdiff_t>((i + 1) * n);
  out.baseline_index.assign(d.baseline_index.begin() + b, d.baseline_index.begin() + e);
  out.alphas.assign(d.alphas.begin() + b, d.alphas.begin() + e);
  if (d.noise.defined()) out.noise = slice(d.noise, i * n, (i + 1) * n);
  return out;
}

}  // namespace

TEST(GradientShap, MatchesCaptumWithItsDraws) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor baselines = set->inputs_file.tensor("baseline_set");
  struct Case {
    const char* key;
    int n_samples;
    float stdevs;
    double atol;  // README
  };
  for (const Case& c :
       {Case{"gradient_shap", 20, 0.f, 4e-7}, Case{"gradient_shap_noisy", 10, 0.09f, 5e-7}}) {
    attr::RandomDraws draws = saved_draws(*set, c.key);
    if (!draws.noise.defined()) draws.noise = Tensor::zeros({16 * c.n_samples, 3, 32, 32});
    attr::GradientShap gs(set->forward,
                          {.n_samples = c.n_samples,
                           .stdevs = c.stdevs,
                           .draws = draws,
                           .return_convergence_delta = true});
    const auto result = gs.attribute(set->inputs, set->labels, baselines);
    const Tensor expected = set->stochastic.tensor(c.key);
    EXPECT_TRUE(allclose(result.values, expected, 0, c.atol)) << c.key;
    ASSERT_EQ(result.delta.shape(), (Shape{16 * c.n_samples})) << c.key;
    std::printf("[   stat   ] %s: max|diff| vs Captum %.3g\n",
                c.key,
                max_abs_diff(result.values, expected));
  }
}

TEST(GradientShap, ZeroNoiseDrawnOrGivenIsTheSame) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor baselines = set->inputs_file.tensor("baseline_set");
  attr::RandomDraws draws = saved_draws(*set, "gradient_shap");  // no noise: stdevs 0 draws zeros
  attr::GradientShap gs(set->forward,
                        {.n_samples = 20, .draws = draws, .return_convergence_delta = true});
  const Tensor x = slice(set->inputs, 0, 16);
  EXPECT_TRUE(allclose(gs.attribute(x, set->labels, baselines).values,
                       set->stochastic.tensor("gradient_shap"),
                       0,
                       4e-7));
}

TEST(GradientShap, DeltaIsTheCompletenessGapOfEachSampleRow) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor baselines = set->inputs_file.tensor("baseline_set");
  // One sample per image: the attribution is the sample row itself.
  attr::RandomDraws draws;
  draws.baseline_index = {5, 0, 7, 2};
  draws.alphas = {0.25f, 0.5f, 0.75f, 0.999f};
  draws.noise = gradlens::testing::random_tensor({4, 3, 32, 32}, 7, -0.1f, 0.1f);
  const Tensor x = slice(set->inputs, 4, 8);
  const std::vector<std::int64_t> t(set->labels.begin() + 4, set->labels.begin() + 8);
  attr::GradientShap gs(
      set->forward,
      {.n_samples = 1, .stdevs = 0.1f, .draws = draws, .return_convergence_delta = true});
  ASSERT_TRUE(gs.has_convergence_delta());
  const auto result = gs.attribute(x, t, baselines);
  const Tensor xn = add(x, draws.noise);
  const Tensor b = index_rows(baselines, draws.baseline_index);
  const auto fx = attr::target_outputs(set->forward, xn, t).to_vector();
  const auto fb = attr::target_outputs(set->forward, b, t).to_vector();
  const auto values = result.values.to_vector();
  const auto delta = result.delta.to_vector();
  for (std::size_t i = 0; i < 4; ++i) {
    double total = 0;
    for (std::size_t k = 0; k < 3072; ++k) total += values[i * 3072 + k];
    EXPECT_NEAR(delta[i], total - (fx[i] - fb[i]), 1e-4) << "row " << i;
  }
  // Without multiply_by_inputs the rows are the gradients at the interpolation points.
  attr::GradientShap grads(
      set->forward, {.n_samples = 1, .stdevs = 0.1f, .multiply_by_inputs = false, .draws = draws});
  EXPECT_TRUE(
      allclose(mul(grads.attribute(x, t, baselines).values, sub(xn, b)), result.values, 0, 1e-7));
}

TEST(GradientShap, OneBatchEqualsSingleImageCallsAndChunks) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor baselines = set->inputs_file.tensor("baseline_set");
  const attr::RandomDraws draws = saved_draws(*set, "gradient_shap_noisy");
  attr::GradientShap gs(
      set->forward,
      {.n_samples = 10, .stdevs = 0.09f, .draws = draws, .return_convergence_delta = true});
  const auto all = gs.attribute(set->inputs, set->labels, baselines);
  for (std::int64_t i = 0; i < 16; ++i) {
    const attr::RandomDraws mine = slice_draws(draws, i, 10);
    attr::GradientShap single(
        set->forward,
        {.n_samples = 10, .stdevs = 0.09f, .draws = mine, .return_convergence_delta = true});
    const std::int64_t target = set->labels[static_cast<std::size_t>(i)];
    const auto one =
        single.attribute(slice(set->inputs, i, i + 1), std::span(&target, 1), baselines);
    EXPECT_TRUE(allclose(one.values, slice(all.values, i, i + 1), 0, 1e-6)) << "image " << i;
    EXPECT_TRUE(allclose(one.delta, slice(all.delta, i * 10, i * 10 + 10), 0, 1e-5))
        << "image " << i;
  }
  gs.batching().set_max_rows(37);
  EXPECT_TRUE(
      allclose(gs.attribute(set->inputs, set->labels, baselines).values, all.values, 0, 1e-6));
}

TEST(GradientShap, SeededDrawsAreReproducible) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor baselines = set->inputs_file.tensor("baseline_set");
  const Tensor x = slice(set->inputs, 0, 4);
  const std::vector<std::int64_t> t(set->labels.begin(), set->labels.begin() + 4);
  attr::GradientShap a(set->forward, {.n_samples = 8, .stdevs = 0.1f, .seed = 42});
  attr::GradientShap b(set->forward, {.n_samples = 8, .stdevs = 0.1f, .seed = 42});
  attr::GradientShap c(set->forward, {.n_samples = 8, .stdevs = 0.1f, .seed = 43});
  const Tensor first = a.attribute(x, t, baselines).values;
  EXPECT_TRUE(allclose(first, a.attribute(x, t, baselines).values, 0, 0));  // same call, same draws
  EXPECT_TRUE(allclose(first, b.attribute(x, t, baselines).values, 0, 0));
  EXPECT_FALSE(allclose(first, c.attribute(x, t, baselines).values, 0, 1e-4));
}

TEST(GradientShap, RejectsMissingBaselinesAndBadDraws) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor x = slice(set->inputs, 0, 2);
  const std::vector<std::int64_t> t = {0, 1};
  attr::GradientShap gs(set->forward);
  try {
    gs.attribute(x, t, Tensor());
    FAIL() << "no baselines accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("[gradient_shap] baselines are required"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(gs.attribute(x, t, Tensor::zeros({4, 3, 16, 16})), std::invalid_argument);
  const Tensor baselines = set->inputs_file.tensor("baseline_set");
  attr::RandomDraws wrong;
  wrong.noise = Tensor::zeros({3, 3, 32, 32});
  attr::GradientShap bad_noise(set->forward, {.n_samples = 5, .draws = wrong});
  EXPECT_THROW(bad_noise.attribute(x, t, baselines), std::invalid_argument);
  attr::RandomDraws out_of_range;
  out_of_range.baseline_index = std::vector<std::int64_t>(10, 8);
  attr::GradientShap bad_index(set->forward, {.n_samples = 5, .draws = out_of_range});
  EXPECT_THROW(bad_index.attribute(x, t, baselines), std::invalid_argument);
}
