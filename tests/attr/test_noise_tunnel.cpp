// NoiseTunnel against Captum (its saved noise, and statistically for the tutorial's 100-sample
// setting), its axioms (stdev 0 is the base method), partitioning, batching, draws and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "gradlens/attr/gradient.h"
#include "gradlens/attr/gradient_shap.h"
#include "gradlens/attr/integrated_gradients.h"
#include "gradlens/attr/noise_tunnel.h"
#include "gradlens/attr/saliency.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/nn/lenet.h"
#include "tests/attr/reference.h"
#include "tests/testing.h"

using namespace gradlens;
using gradlens::testing::allclose;

namespace {

constexpr std::size_t kImage = 3 * 32 * 32;

/// The README's three-part tolerance: |diff| <= atol_most on at least 99.9% of the elements,
/// <= atol_all on every element, and per-image ||actual - expected||_2 / ||expected||_2 <= rel_l2.
::testing::AssertionResult three_part_close(const Tensor& actual,
                                            const Tensor& expected,
                                            double atol_most,
                                            double atol_all,
                                            double rel_l2,
                                            const std::string& key) {
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << key << ": shapes differ: " << shape_str(actual.shape())
                                         << " vs " << shape_str(expected.shape());
  const auto a = actual.to_vector(), e = expected.to_vector();
  const std::size_t per_image =
      static_cast<std::size_t>(shape_numel(actual.shape()) / actual.size(0));
  std::size_t over_most = 0;
  double worst = 0, worst_rel = 0;
  std::size_t worst_image = 0;
  for (std::size_t i = 0; i < a.size() / per_image; ++i) {
    double diff2 = 0, ref2 = 0;
    for (std::size_t k = i * per_image; k < (i + 1) * per_image; ++k) {
      const double d = std::fabs(static_cast<double>(a[k]) - e[k]);
      over_most += d > atol_most;
      worst = std::max(worst, d);
      diff2 += d * d;
      ref2 += static_cast<double>(e[k]) * e[k];
    }
    const double rel = std::sqrt(diff2 / std::max(ref2, 1e-300));
    if (rel > worst_rel) {
      worst_rel = rel;
      worst_image = i;
    }
  }
  const double fraction_over = static_cast<double>(over_most) / static_cast<double>(a.size());
  std::printf(
      "[   stat   ] %s: max|diff| %.3g, %.3g%% of elements over %.1g, worst rel-L2 %.3g (image "
      "%zu)\n",
      key.c_str(),
      worst,
      100 * fraction_over,
      atol_most,
      worst_rel,
      worst_image);
  if (fraction_over <= 1e-3 && worst <= atol_all && worst_rel <= rel_l2)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << key << ": " << over_most << " of " << a.size() << " elements over atol " << atol_most
         << " (allowed 0.1%); max|diff| " << worst << " (allowed " << atol_all
         << "); worst per-image rel-L2 " << worst_rel << " at image " << worst_image << " (allowed "
         << rel_l2 << ")";
}

double pearson(const float* x, const float* y, std::size_t n) {
  double mx = 0, my = 0;
  for (std::size_t k = 0; k < n; ++k) {
    mx += x[k];
    my += y[k];
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t k = 0; k < n; ++k) {
    sxy += (x[k] - mx) * (y[k] - my);
    sxx += (x[k] - mx) * (x[k] - mx);
    syy += (y[k] - my) * (y[k] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

double mean_abs_diff(const float* x, const float* y, std::size_t n) {
  double total = 0;
  for (std::size_t k = 0; k < n; ++k) total += std::fabs(static_cast<double>(x[k]) - y[k]);
  return total / static_cast<double>(n);
}

// Captum's InputBaselineXGradient with its alphas handed in (row r uses alphas[r]): the base that
// GradientShap wraps in NoiseTunnel(smoothgrad, draw_baseline_from_distrib).
class InputBaselineXGradient : public attr::Attribution {
 public:
  InputBaselineXGradient(attr::ForwardFn forward, std::vector<float> alphas)
      : Attribution(std::move(forward)), alphas_(std::move(alphas)) {}
  std::string_view name() const override { return "input_baseline_x_gradient"; }
  bool has_convergence_delta() const override { return true; }
  attr::Attributions attribute(const Tensor& x,
                               const attr::Targets& targets,
                               const Tensor& baselines) override {
    EXPECT_EQ(static_cast<std::size_t>(x.size(0)), alphas_.size());
    const Tensor alpha = Tensor::from_vector(alphas_, {x.size(0), 1, 1, 1});
    const Tensor scaled = add(mul(alpha, x), mul(affine(alpha, -1.f, 1.f), baselines));
    attr::Attributions out;
    out.values = mul(sub(x, baselines), attr::compute_gradients(forward_, scaled, targets));
    out.delta = attr::convergence_delta(forward_, out.values, x, baselines, targets);
    return out;
  }

 private:
  std::vector<float> alphas_;
};

void run_nt10(attr::NoiseTunnelType type,
              const std::string& key,
              double atol_most,
              double atol_all,
              double rel_l2) {
  GRADLENS_PUBLIC_SET(set);
  attr::RandomDraws draws;
  draws.noise = set->stochastic.tensor("nt10.noise");
  attr::IntegratedGradients ig(set->forward);
  attr::NoiseTunnel nt(ig, {.type = type, .nt_samples = 10, .stdevs = 0.2f, .draws = draws});
  ASSERT_TRUE(nt.has_convergence_delta());
  const auto result = nt.attribute(set->inputs, set->labels, Tensor::zeros(set->inputs.shape()));
  EXPECT_TRUE(three_part_close(
      result.values, set->stochastic.tensor(key), atol_most, atol_all, rel_l2, key));
  EXPECT_EQ(result.delta.shape(), (Shape{160}));
}

}  // namespace

// README tolerances (last column of public_stochastic).
TEST(NoiseTunnel, IgSmoothGradSqMatchesCaptumWithItsNoise) {
  run_nt10(attr::NoiseTunnelType::SmoothGradSq, "nt10_ig_smoothgrad_sq", 3e-6, 4e-5, 3e-3);
}

TEST(NoiseTunnel, IgSmoothGradMatchesCaptumWithItsNoise) {
  run_nt10(attr::NoiseTunnelType::SmoothGrad, "nt10_ig_smoothgrad", 1e-4, 2e-3, 7e-3);
}

TEST(NoiseTunnel, IgVarGradMatchesCaptumWithItsNoise) {
  run_nt10(attr::NoiseTunnelType::VarGrad, "nt10_ig_vargrad", 2e-6, 5e-5, 6e-3);
}

// The tutorial's setting (nt_samples 100 in partitions of 10, our own seeded noise) compared with
// two Captum runs that differ only in their seed (a, b) and with the 500-sample mean: ours must
// look like a third such run. NOTE: per-image bounds at Captum's own spread (r >= min_i r(a, b) =
// 0.964, mean|ours - a| <= 1.1 mean|a - b|) fail for a correct estimator about half the time (seeds
// 2024 and 7 of 3 tried; image 8 reached r 0.954 and a 1.13 ratio, image 2 r 0.959). Per image we
// keep the README's 0.95 floor and a 1.25 ratio; the comparison with Captum's spread is made on the
// mean over images.
TEST(NoiseTunnel, IgSmoothGradSq100SamplesIsStatisticallyCaptum) {
  GRADLENS_PUBLIC_SET(set);
  attr::IntegratedGradients ig(set->forward);
  attr::NoiseTunnel nt(ig,
                       {.type = attr::NoiseTunnelType::SmoothGradSq,
                        .nt_samples = 100,
                        .nt_samples_batch_size = 10,
                        .stdevs = 0.2f,
                        .seed = 2024});
  const auto ours =
      nt.attribute(set->inputs, set->labels, Tensor::zeros(set->inputs.shape())).values.to_vector();
  const auto a = set->stochastic.tensor("nt100_ig_smoothgrad_sq_seed_a").to_vector();
  const auto b = set->stochastic.tensor("nt100_ig_smoothgrad_sq_seed_b").to_vector();
  const auto expected = set->stochastic.tensor("nt_ig_smoothgrad_sq.expected").to_vector();
  const auto se =
      set->stochastic.tensor("nt100_ig_smoothgrad_sq.std_error_of_difference").to_vector();
  double z2 = 0, n_z = 0, over4 = 0;
  for (std::size_t k = 0; k < ours.size(); ++k) {
    if (!(se[k] > 0)) continue;
    const double z = (ours[k] - expected[k]) / se[k];
    z2 += z * z;
    over4 += std::fabs(z) > 4;
    ++n_z;
  }
  double min_r_a = 1, min_r_b = 1, min_r_e = 1, min_r_ab = 1, worst_ratio = 0;
  double mean_r_a = 0, mean_r_b = 0, mean_r_ab = 0, mean_ratio = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    const float* o = &ours[i * kImage];
    const float *ai = &a[i * kImage], *bi = &b[i * kImage];
    const double r_a = pearson(o, ai, kImage), r_b = pearson(o, bi, kImage);
    const double r_e = pearson(o, &expected[i * kImage], kImage), r_ab = pearson(ai, bi, kImage);
    const double ratio = mean_abs_diff(o, ai, kImage) / mean_abs_diff(ai, bi, kImage);
    EXPECT_GE(r_a, 0.95) << "image " << i;
    EXPECT_GE(r_b, 0.95) << "image " << i;
    EXPECT_GE(r_e, 0.95) << "image " << i;
    EXPECT_LE(ratio, 1.25) << "image " << i << ": mean|ours - a| / mean|a - b|";
    min_r_a = std::min(min_r_a, r_a);
    min_r_b = std::min(min_r_b, r_b);
    min_r_e = std::min(min_r_e, r_e);
    min_r_ab = std::min(min_r_ab, r_ab);
    worst_ratio = std::max(worst_ratio, ratio);
    mean_r_a += r_a / 16;
    mean_r_b += r_b / 16;
    mean_r_ab += r_ab / 16;
    mean_ratio += ratio / 16;
  }
  // On average over the images, ours is as close to each Captum run as they are to each other.
  EXPECT_GE(mean_r_a, mean_r_ab - 5e-3);
  EXPECT_GE(mean_r_b, mean_r_ab - 5e-3);
  EXPECT_LE(mean_ratio, 1.1);
  // The README's test against the 500-sample mean.
  EXPECT_LE(z2 / n_z, 1.7);
  EXPECT_LE(over4 / n_z, 2e-2);
  std::printf(
      "[   stat   ] nt100 smoothgrad_sq: r(ours, a) min %.4f mean %.4f, r(ours, b) min %.4f mean "
      "%.4f, r(a, b) min %.4f mean %.4f, r(ours, expected) min %.4f; mean|ours-a| / mean|a-b| "
      "worst %.3f mean %.3f; mean z^2 %.3f, |z|>4 %.3g\n",
      min_r_a,
      mean_r_a,
      min_r_b,
      mean_r_b,
      min_r_ab,
      mean_r_ab,
      min_r_e,
      worst_ratio,
      mean_ratio,
      z2 / n_z,
      over4 / n_z);
}

TEST(NoiseTunnel, ZeroStdevIsTheBaseMethodAndVarGradIsZero) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor x = slice(set->inputs, 2, 4);
  const std::vector<std::int64_t> t(set->labels.begin() + 2, set->labels.begin() + 4);
  attr::IntegratedGradients ig(set->forward);
  const auto base = ig.attribute(x, t);
  const Tensor a = base.values;
  const Tensor a2 = mul(a, a);
  float largest_sq = 0;
  for (const float v : a2.to_vector()) largest_sq = std::max(largest_sq, v);
  for (const auto type : {attr::NoiseTunnelType::SmoothGrad,
                          attr::NoiseTunnelType::SmoothGradSq,
                          attr::NoiseTunnelType::VarGrad}) {
    attr::NoiseTunnel nt(ig, {.type = type, .nt_samples = 4, .stdevs = 0.f, .seed = 3});
    const auto result = nt.attribute(x, t);
    switch (type) {
      case attr::NoiseTunnelType::SmoothGrad:
        EXPECT_TRUE(allclose(result.values, a, 1e-6, 1e-9));
        break;
      case attr::NoiseTunnelType::SmoothGradSq:
        EXPECT_TRUE(allclose(result.values, a2, 1e-6, 1e-12));
        break;
      case attr::NoiseTunnelType::VarGrad:
        EXPECT_TRUE(allclose(result.values, Tensor::zeros(x.shape()), 0, 1e-6 * largest_sq));
        break;
    }
    // Every sample row reports the base's delta.
    const auto delta = result.delta.to_vector(), base_delta = base.delta.to_vector();
    ASSERT_EQ(delta.size(), 8u);
    for (std::size_t r = 0; r < 8; ++r)
      EXPECT_NEAR(delta[r], base_delta[r / 4], 1e-6) << "row " << r;
  }
}

TEST(NoiseTunnel, PartitionsAndChunksDoNotChangeTheResult) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor x = slice(set->inputs, 0, 3);
  const std::vector<std::int64_t> t(set->labels.begin(), set->labels.begin() + 3);
  attr::Saliency saliency(set->forward, {.abs = false});
  for (const auto type : {attr::NoiseTunnelType::SmoothGrad,
                          attr::NoiseTunnelType::SmoothGradSq,
                          attr::NoiseTunnelType::VarGrad}) {
    attr::NoiseTunnel whole(saliency, {.type = type, .nt_samples = 7, .stdevs = 0.3f, .seed = 5});
    const Tensor reference = whole.attribute(x, t).values;
    for (const int k : {1, 3, 7, 10}) {
      attr::NoiseTunnel parts(
          saliency,
          {.type = type, .nt_samples = 7, .nt_samples_batch_size = k, .stdevs = 0.3f, .seed = 5});
      EXPECT_TRUE(allclose(parts.attribute(x, t).values, reference, 0, 1e-6))
          << attr::to_string(type) << ", nt_samples_batch_size " << k;
    }
    attr::Saliency chunked(set->forward, {.abs = false});
    chunked.batching().set_max_rows(4);
    attr::NoiseTunnel small_chunks(chunked,
                                   {.type = type, .nt_samples = 7, .stdevs = 0.3f, .seed = 5});
    EXPECT_TRUE(allclose(small_chunks.attribute(x, t).values, reference, 0, 1e-6))
        << attr::to_string(type);
  }

  // IG base: partitions (2 + 2 + 1 samples) and IG's own chunking; deltas keep row i * nt + s and
  // equal IG's deltas on the whole expanded batch.
  attr::RandomDraws draws;
  draws.noise = gradlens::testing::random_tensor({15, 3, 32, 32}, 11, -0.4f, 0.4f);
  attr::IntegratedGradients ig(set->forward, {.n_steps = 10});
  attr::NoiseTunnel whole(
      ig, {.type = attr::NoiseTunnelType::SmoothGradSq, .nt_samples = 5, .draws = draws});
  const auto all = whole.attribute(x, t);
  attr::IntegratedGradients ig_chunked(set->forward, {.n_steps = 10});
  ig_chunked.batching().set_max_rows(13);
  attr::NoiseTunnel parts(ig_chunked,
                          {.type = attr::NoiseTunnelType::SmoothGradSq,
                           .nt_samples = 5,
                           .nt_samples_batch_size = 2,
                           .draws = draws});
  const auto split = parts.attribute(x, t);
  EXPECT_TRUE(allclose(split.values, all.values, 0, 1e-6));
  EXPECT_TRUE(allclose(split.delta, all.delta, 0, 1e-6));
  const Tensor noisy = add(attr::repeat_interleave(x, 5), draws.noise);
  const auto direct = ig.attribute(noisy, attr::repeat_interleave(t, 5));
  EXPECT_TRUE(allclose(all.delta, direct.delta, 0, 1e-6));
  EXPECT_TRUE(allclose(split.delta, direct.delta, 0, 1e-6));
}

TEST(NoiseTunnel, OneBatchEqualsSingleImageCallsWithTheirNoise) {
  GRADLENS_PUBLIC_SET(set);
  attr::RandomDraws draws;
  draws.noise = gradlens::testing::random_tensor({16 * 4, 3, 32, 32}, 99, -0.5f, 0.5f);
  attr::Saliency saliency(set->forward);
  attr::NoiseTunnel nt(saliency,
                       {.type = attr::NoiseTunnelType::VarGrad, .nt_samples = 4, .draws = draws});
  EXPECT_FALSE(nt.has_convergence_delta());
  const auto all = nt.attribute(set->inputs, set->labels);
  EXPECT_FALSE(all.delta.defined());
  for (std::int64_t i = 0; i < 16; ++i) {
    attr::RandomDraws mine;
    mine.noise = slice(draws.noise, i * 4, i * 4 + 4);
    attr::NoiseTunnel single(
        saliency, {.type = attr::NoiseTunnelType::VarGrad, .nt_samples = 4, .draws = mine});
    const std::int64_t target = set->labels[static_cast<std::size_t>(i)];
    EXPECT_TRUE(
        allclose(single.attribute(slice(set->inputs, i, i + 1), std::span(&target, 1)).values,
                 slice(all.values, i, i + 1),
                 0,
                 1e-6))
        << "image " << i;
  }
}

// GradientShap is NoiseTunnel(smoothgrad, draw_baseline_from_distrib) around
// InputBaselineXGradient: the tunnel's baseline-distribution path reproduces it (and Captum).
TEST(NoiseTunnel, BaselinesFromADistributionGiveGradientShap) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor baselines = set->inputs_file.tensor("baseline_set");
  attr::RandomDraws draws;
  draws.baseline_index = set->stochastic.int64s("gradient_shap_noisy.baseline_index");
  const auto alphas = set->stochastic.float64s("gradient_shap_noisy.alphas");
  draws.alphas.assign(alphas.begin(), alphas.end());
  draws.noise = set->stochastic.tensor("gradient_shap_noisy.noise");
  InputBaselineXGradient ibxg(set->forward, draws.alphas);
  attr::NoiseTunnel nt(ibxg,
                       {.type = attr::NoiseTunnelType::SmoothGrad,
                        .nt_samples = 10,
                        .stdevs = 0.09f,
                        .draws = draws,
                        .draw_baseline_from_distrib = true});
  const auto tunnel = nt.attribute(set->inputs, set->labels, baselines);
  attr::GradientShap gs(
      set->forward,
      {.n_samples = 10, .stdevs = 0.09f, .draws = draws, .return_convergence_delta = true});
  const auto shap = gs.attribute(set->inputs, set->labels, baselines);
  EXPECT_TRUE(allclose(tunnel.values, shap.values, 0, 1e-7));
  EXPECT_TRUE(allclose(tunnel.delta, shap.delta, 0, 1e-6));
  EXPECT_TRUE(allclose(tunnel.values, set->stochastic.tensor("gradient_shap_noisy"), 0, 5e-7));
}

TEST(NoiseTunnel, RejectsBadOptionsAndDraws) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor x = slice(set->inputs, 0, 2);
  const std::vector<std::int64_t> t = {0, 1};
  attr::Saliency saliency(set->forward);
  attr::RandomDraws wrong;
  wrong.noise = Tensor::zeros({2 * 5 + 1, 3, 32, 32});
  attr::NoiseTunnel bad_noise(saliency, {.nt_samples = 5, .draws = wrong});
  try {
    bad_noise.attribute(x, t);
    FAIL() << "noise of the wrong shape accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "[noise_tunnel] draws.noise is [11, 3, 32, 32], expected [10, 3, 32, 32]"),
              std::string::npos)
        << e.what();
  }
  attr::NoiseTunnel no_samples(saliency, {.nt_samples = 0});
  EXPECT_THROW(no_samples.attribute(x, t), std::invalid_argument);
  attr::NoiseTunnel no_distribution(saliency, {.draw_baseline_from_distrib = true});
  EXPECT_THROW(no_distribution.attribute(x, t), std::invalid_argument);
  EXPECT_THROW(attr::parse_noise_tunnel_type("smoothgrad_squared"), std::invalid_argument);
  for (const auto type : {attr::NoiseTunnelType::SmoothGrad,
                          attr::NoiseTunnelType::SmoothGradSq,
                          attr::NoiseTunnelType::VarGrad})
    EXPECT_EQ(attr::parse_noise_tunnel_type(attr::to_string(type)), type);
  // The tunnel owns its base: a copy of a method given by value, or the one it shares.
  attr::NoiseTunnel nt(saliency);
  EXPECT_EQ(nt.name(), "noise_tunnel");
  EXPECT_NE(&nt.base(), &saliency);
  EXPECT_EQ(nt.base().name(), saliency.name());
  const auto shared = std::make_shared<attr::Saliency>(saliency);
  attr::NoiseTunnel sharing(shared);
  EXPECT_EQ(&sharing.base(), shared.get());
}

TEST(SamplingDraws, NoiseTunnelAndGradientShapDoNotDependOnTheChunking) {
  // Each image's draws come from its own streams, keyed by its index in the data set: 100 images in
  // one call, in chunks of 7 and one at a time give the same attributions.
  nn::Net net(3);
  const attr::ForwardFn forward = [&net](const Tensor& x) { return net(x); };
  const std::int64_t n = 100;
  const Tensor x = gradlens::testing::random_tensor({n, 3, 32, 32}, 4);
  const Tensor baselines = gradlens::testing::random_tensor({5, 3, 32, 32}, 6, -0.2f, 0.2f);
  std::vector<std::int64_t> targets(static_cast<std::size_t>(n)), ids(targets.size());
  for (std::int64_t i = 0; i < n; ++i) {
    targets[static_cast<std::size_t>(i)] = i % 10;
    ids[static_cast<std::size_t>(i)] = 1000 + 3 * i;
  }
  const auto run = [&](std::int64_t per_chunk, bool shap) {
    std::vector<Tensor> parts;
    for (std::int64_t b = 0; b < n; b += per_chunk) {
      const std::int64_t e = std::min(n, b + per_chunk);
      const std::vector<std::int64_t> chunk_ids(ids.begin() + b, ids.begin() + e);
      const std::span<const std::int64_t> chunk_targets(targets.data() + b,
                                                        static_cast<std::size_t>(e - b));
      if (shap) {
        attr::GradientShap gs(forward,
                              {.n_samples = 3, .stdevs = 0.1f, .seed = 9, .image_ids = chunk_ids});
        parts.push_back(gs.attribute(slice(x, b, e), chunk_targets, baselines).values);
      } else {
        attr::Saliency saliency(forward);
        attr::NoiseTunnel nt(saliency,
                             {.type = attr::NoiseTunnelType::VarGrad,
                              .nt_samples = 3,
                              .stdevs = 0.2f,
                              .seed = 9,
                              .image_ids = chunk_ids});
        parts.push_back(nt.attribute(slice(x, b, e), chunk_targets).values);
      }
    }
    return cat(parts);
  };
  for (const bool shap : {false, true}) {
    const Tensor whole = run(n, shap);
    for (const std::int64_t per_chunk : {1, 7}) {
      EXPECT_TRUE(allclose(run(per_chunk, shap), whole, 0, 1e-6))
          << (shap ? "gradient_shap" : "noise_tunnel") << ", " << per_chunk << " per chunk";
    }
  }
}
