// One row per op: a central-difference gradcheck of every input's gradient (tests/testing.h), plus
// the whole tutorial Net. ReLU and max-pool inputs are kept away from kinks and ties.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "gradlens/autograd/engine.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/nn/lenet.h"
#include "tests/testing.h"

using namespace gradlens;
using gradlens::testing::gradcheck;
using gradlens::testing::random_tensor;

namespace {

// Values at least `gap` away from 0, for relu.
Tensor away_from_zero(const Shape& shape, std::uint64_t seed, float gap = 0.05f) {
  auto v = random_tensor(shape, seed).to_vector();
  for (float& x : v) x = x >= 0 ? x + gap : x - gap;
  return Tensor::from_vector(v, shape);
}

// Distinct values spaced 0.05 apart in random order, so no max-pool window has a near tie.
Tensor distinct_values(const Shape& shape, std::uint64_t seed) {
  std::vector<float> v(static_cast<std::size_t>(shape_numel(shape)));
  std::iota(v.begin(), v.end(), 0.f);
  std::shuffle(v.begin(), v.end(), std::mt19937_64(seed));
  for (float& x : v) x = (x - static_cast<float>(v.size()) / 2) * 0.05f;
  return Tensor::from_vector(v, shape);
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct OpCase {
  const char* name;
  Fn f;
  std::vector<Tensor> inputs;
};

std::vector<OpCase> op_cases() {
  const std::vector<std::int64_t> picks = {2, 0, 4};
  const std::vector<std::int64_t> rows = {1, 0, 1, 2};
  const std::vector<std::int64_t> targets = {3, 0, 4};
  return {
      {"add",
       [](auto& x) { return add(x[0], x[1]); },
       {random_tensor({2, 3}, 1), random_tensor({2, 3}, 2)}},
      {"add_broadcast_batch",
       [](auto& x) { return add(x[0], x[1]); },
       {random_tensor({2, 3, 4, 4}, 3), random_tensor({3, 4, 4}, 4)}},
      {"sub_broadcast_row",
       [](auto& x) { return sub(x[0], x[1]); },
       {random_tensor({3, 5}, 5), random_tensor({1, 5}, 6)}},
      {"mul",
       [](auto& x) { return mul(x[0], x[1]); },
       {random_tensor({4, 3}, 7), random_tensor({4, 3}, 8)}},
      {"mul_per_row_scale",
       [](auto& x) { return mul(x[0], x[1]); },
       {random_tensor({3, 2, 4, 4}, 9), random_tensor({3, 1, 1, 1}, 10)}},
      {"mul_scalar_tensor",
       [](auto& x) { return mul(x[0], x[1]); },
       {random_tensor({2, 5}, 11), random_tensor({}, 12)}},
      {"affine", [](auto& x) { return affine(x[0], -1.5f, 0.25f); }, {random_tensor({7}, 13)}},
      {"relu", [](auto& x) { return relu(x[0]); }, {away_from_zero({3, 8}, 14)}},
      {"div_broadcast",
       [](auto& x) { return div(x[0], x[1]); },
       {random_tensor({2, 3, 4}, 60), away_from_zero({3, 1}, 61, 0.5f)}},
      {"abs", [](auto& x) { return abs(x[0]); }, {away_from_zero({9}, 62)}},
      {"square", [](auto& x) { return square(x[0]); }, {random_tensor({2, 5}, 63)}},
      {"sqrt", [](auto& x) { return sqrt(x[0]); }, {random_tensor({6}, 64, 0.5f, 2.f)}},
      {"sign_step_have_zero_grad",
       [](auto& x) { return add(sign(x[0]), step(x[0])); },
       {away_from_zero({5}, 65)}},
      {"stabilize", [](auto& x) { return stabilize(x[0], 1e-3f); }, {away_from_zero({5}, 66)}},
      {"safe_div",
       [](auto& x) { return safe_div(x[0], x[1], 0.3f, x[2]); },
       // den well away from the |den| = eps switch: some rows divide, some take the fallback
       {random_tensor({8}, 67),
        Tensor::from_vector({0.9f, -0.8f, 0.05f, -0.1f, 0.7f, 0.02f, -0.6f, 1.2f}, {8}),
        random_tensor({8}, 69)}},
      {"sum_dim", [](auto& x) { return sum_dim(x[0], 1); }, {random_tensor({2, 3, 4}, 70)}},
      {"mean_dim_last", [](auto& x) { return mean_dim(x[0], -1); }, {random_tensor({3, 5}, 71)}},
      {"sum", [](auto& x) { return sum(x[0]); }, {random_tensor({2, 3, 4}, 15)}},
      {"mean", [](auto& x) { return mean(x[0]); }, {random_tensor({5, 2}, 16)}},
      {"reshape",
       [](auto& x) {
         return mul(reshape(x[0], {-1, 6}), x[1]);
       },
       {random_tensor({2, 3, 2}, 17), random_tensor({2, 6}, 18)}},
      {"slice", [](auto& x) { return slice(x[0], 1, 3); }, {random_tensor({4, 3}, 19)}},
      {"cat",
       [](auto& x) {
         return cat({x[0], x[1]});
       },
       {random_tensor({2, 3}, 20), random_tensor({1, 3}, 21)}},
      {"index_rows",
       [rows](auto& x) { return index_rows(x[0], rows); },
       {random_tensor({3, 2, 2}, 22)}},
      {"pick", [picks](auto& x) { return pick(x[0], picks); }, {random_tensor({3, 5}, 23)}},
      {"linear",
       [](auto& x) { return linear(x[0], x[1], x[2]); },
       {random_tensor({3, 7}, 24), random_tensor({5, 7}, 25), random_tensor({5}, 26)}},
      {"linear_no_bias",
       [](auto& x) { return linear(x[0], x[1]); },
       {random_tensor({1, 4}, 27), random_tensor({2, 4}, 28)}},
      {"conv2d",
       [](auto& x) { return conv2d(x[0], x[1], x[2]); },
       {random_tensor({2, 3, 7, 6}, 29), random_tensor({4, 3, 3, 3}, 30), random_tensor({4}, 31)}},
      {"conv2d_stride2_pad1",
       [](auto& x) { return conv2d(x[0], x[1], x[2], 2, 1); },
       {random_tensor({1, 2, 7, 7}, 32), random_tensor({3, 2, 3, 3}, 33), random_tensor({3}, 34)}},
      {"conv2d_5x5_tutorial",
       [](auto& x) { return conv2d(x[0], x[1], x[2]); },
       {random_tensor({2, 3, 12, 12}, 35),
        random_tensor({6, 3, 5, 5}, 36),
        random_tensor({6}, 37)}},
      {"max_pool2d",
       [](auto& x) { return max_pool2d(x[0], 2); },
       {distinct_values({2, 3, 6, 6}, 38)}},
      {"max_pool2d_k3_s2_pad1",
       [](auto& x) { return max_pool2d(x[0], 3, 2, 1); },
       {distinct_values({1, 2, 7, 5}, 39)}},
      {"exp", [](auto& x) { return exp(x[0]); }, {random_tensor({2, 5}, 80)}},
      {"log", [](auto& x) { return log(x[0]); }, {random_tensor({6}, 81, 0.5f, 2.f)}},
      {"tanh", [](auto& x) { return tanh(x[0]); }, {random_tensor({2, 5}, 82, -2.f, 2.f)}},
      {"sigmoid", [](auto& x) { return sigmoid(x[0]); }, {random_tensor({2, 5}, 83, -3.f, 3.f)}},
      {"leaky_relu", [](auto& x) { return leaky_relu(x[0], 0.1f); }, {away_from_zero({9}, 84)}},
      {"clamp", [](auto& x) { return clamp(x[0], -0.42f, 0.33f); }, {distinct_values({4, 5}, 85)}},
      {"channel_affine",
       [](auto& x) {
         return channel_affine(x[0],
                               Tensor::from_vector({1.5f, -0.5f, 2.f}, {3}),
                               Tensor::from_vector({0.1f, 0.f, -0.3f}, {3}));
       },
       {random_tensor({2, 3, 2, 2}, 88)}},
      {"channel_affine_relu",
       [](auto& x) {
         // scale 1 and shift 0 keep the ReLU's inputs away from its kink
         return channel_affine(
             x[0], Tensor::from_vector({1.f, -1.f}, {2}), Tensor::full({2}, 0.f), true);
       },
       {away_from_zero({3, 2, 5}, 89)}},
      {"channel_affine_add",
       [](auto& x) {
         return channel_affine(x[0],
                               Tensor::from_vector({1.5f, -0.5f, 2.f}, {3}),
                               Tensor::from_vector({0.1f, 0.f, -0.3f}, {3}),
                               false,
                               x[1]);
       },
       {random_tensor({2, 3, 2, 2}, 95), random_tensor({2, 3, 2, 2}, 96)}},
      {"channel_affine_add_relu",
       [](auto& x) {
         // x * 1 + 0 + 0 and 0 * -1 + 0 + addend: the ReLU's inputs stay away from its kink
         return channel_affine(
             x[0], Tensor::from_vector({1.f, -1.f}, {2}), Tensor::full({2}, 0.f), true, x[1]);
       },
       {away_from_zero({3, 2, 5}, 97), Tensor::full({3, 2, 5}, 0.f)}},
      {"permute",
       [](auto& x) {
         return mul(permute(x[0], {2, 0, 1}), x[1]);
       },
       {random_tensor({2, 3, 4}, 86), random_tensor({4, 2, 3}, 87)}},
      {"pad_asymmetric",
       [](auto& x) {
         return mul(pad(x[0], {0, 1, 2}, {0, 2, -1}, 0.5f), x[1]);
       },
       {random_tensor({2, 3, 4}, 88), random_tensor({2, 6, 5}, 89)}},
      {"strided_slice",
       [](auto& x) {
         return strided_slice(x[0], {0, 1, 0}, {2, 2, 3}, {1, 2, 3});
       },
       {random_tensor({2, 5, 9}, 90)}},
      {"spread",
       [](auto& x) {
         return mul(spread(x[0], {1, 2, 3}), x[1]);
       },
       {random_tensor({2, 3, 2}, 91), random_tensor({2, 5, 4}, 92)}},
      {"gather_made_index",
       [index = make_gather_index({5, -1, 0, 3, 1, 4}, {2, 3})](auto& x) {
         return mul(gather(x[0], {3, 2}, index, 0.25f), x[1]);
       },
       {random_tensor({2, 3}, 95), random_tensor({3, 2}, 96)}},
      {"concat_middle_axis",
       [](auto& x) {
         return concat({x[0], x[1], x[0]}, -2);
       },
       {random_tensor({2, 3, 4}, 93), random_tensor({2, 1, 4}, 94)}},
      {"softmax", [](auto& x) { return softmax(x[0]); }, {random_tensor({3, 6}, 40)}},
      {"log_softmax", [](auto& x) { return log_softmax(x[0]); }, {random_tensor({3, 6}, 41)}},
      {"cross_entropy",
       [targets](auto& x) { return cross_entropy(x[0], targets); },
       {random_tensor({3, 6}, 42, -3.f, 3.f)}},
  };
}

}  // namespace

TEST(OpGrads, EveryOpMatchesFiniteDifferences) {
  for (auto& c : op_cases()) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(gradcheck(c.f, c.inputs)) << c.name;
  }
}

TEST(OpGrads, WholeNetMatchesFiniteDifferences) {
  nn::Net net(3);
  // Check the input and two weights through the whole Net (every op of it on the path).
  const Fn f = [&](const std::vector<Tensor>& x) {
    std::map<std::string, Tensor> state = net.state_dict();
    Tensor out = conv2d(x[0], x[1], state.at("conv1.bias"));
    out = max_pool2d(relu(out), 2);
    out = max_pool2d(relu(conv2d(out, state.at("conv2.weight"), state.at("conv2.bias"))), 2);
    out = relu(linear(reshape(out, {-1, 400}), x[2], state.at("fc1.bias")));
    out = relu(linear(out, state.at("fc2.weight"), state.at("fc2.bias")));
    return linear(out, state.at("fc3.weight"), state.at("fc3.bias"));
  };
  EXPECT_TRUE(gradcheck(f,
                        {random_tensor({2, 3, 32, 32}, 50),
                         net.state_dict().at("conv1.weight").detach(),
                         net.state_dict().at("fc1.weight").detach()},
                        1e-3,
                        2e-2,
                        48));
}

TEST(OpGrads, NetForwardEqualsManualComposition) {
  nn::Net net(5);
  const Tensor x = random_tensor({3, 3, 32, 32}, 51);
  const auto s = net.state_dict();
  Tensor y = max_pool2d(relu(conv2d(x, s.at("conv1.weight"), s.at("conv1.bias"))), 2);
  y = max_pool2d(relu(conv2d(y, s.at("conv2.weight"), s.at("conv2.bias"))), 2);
  y = relu(linear(reshape(y, {-1, 400}), s.at("fc1.weight"), s.at("fc1.bias")));
  y = relu(linear(y, s.at("fc2.weight"), s.at("fc2.bias")));
  y = linear(y, s.at("fc3.weight"), s.at("fc3.bias"));
  EXPECT_TRUE(gradlens::testing::allclose(net(x), y, 0, 0));
}

// The fused op is what it replaces, bit for bit: mul then add (then the residual add, then relu),
// forward and backward, on a batch large enough to be split over threads.
TEST(OpGrads, ChannelAffineEqualsMulThenAddBitwise) {
  const Tensor x = random_tensor({9, 16, 33, 35}, 90).set_requires_grad(true);
  const Tensor residual = random_tensor(x.shape(), 98).set_requires_grad(true);
  const Tensor scale = random_tensor({16}, 91, -2.f, 2.f), shift = random_tensor({16}, 92);
  const Tensor dy = random_tensor(x.shape(), 93);
  const Tensor scale4 = reshape(scale, {1, 16, 1, 1}), shift4 = reshape(shift, {1, 16, 1, 1});
  for (const bool with_residual : {false, true}) {
    for (const bool fuse_relu : {false, true}) {
      SCOPED_TRACE(std::string(fuse_relu ? "relu" : "affine") + (with_residual ? " + add" : ""));
      const Tensor fused =
          channel_affine(x, scale, shift, fuse_relu, with_residual ? residual : Tensor());
      Tensor composed = add(mul(x, scale4), shift4);
      if (with_residual) composed = add(composed, residual);
      if (fuse_relu) composed = relu(composed);
      EXPECT_TRUE(gradlens::testing::allclose(fused, composed, 0, 0));
      const std::vector<Tensor> inputs =
          with_residual ? std::vector<Tensor>{x, residual} : std::vector<Tensor>{x};
      const std::vector<Tensor> g_fused = grad({fused}, inputs, {dy});
      const std::vector<Tensor> g_composed = grad({composed}, inputs, {dy});
      for (std::size_t i = 0; i < inputs.size(); ++i) {
        EXPECT_TRUE(gradlens::testing::allclose(g_fused[i], g_composed[i], 0, 0)) << i;
      }
    }
  }
  EXPECT_THROW(channel_affine(x, random_tensor({15}, 94), shift), std::invalid_argument);
  EXPECT_THROW(channel_affine(x, scale, shift, false, random_tensor({9, 16, 33, 1}, 99)),
               std::invalid_argument);  // the addend is not broadcast
}
