// The tape: backward accumulation into leaves, functional grad, no-grad mode, overrides.
#include <gtest/gtest.h>

#include <algorithm>

#include "gradlens/autograd/engine.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/hooks.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/kernels/backend.h"
#include "tests/testing.h"

using namespace gradlens;

TEST(Engine, BackwardAccumulatesIntoLeaves) {
  Tensor x = Tensor::from_vector({1, -2, 3}, {3}).set_requires_grad();
  Tensor y = sum(mul(x, x));  // d/dx = 2x
  y.backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{2, -4, 6}));
  sum(x).backward();  // accumulates: + 1
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{3, -3, 7}));
}

TEST(Engine, SharedSubexpressionGetsBothPaths) {
  Tensor x = Tensor::from_vector({2}, {1}).set_requires_grad();
  Tensor a = mul_scalar(x, 3.f);
  Tensor y = sum(add(mul(a, a), a));  // 9x^2 + 3x -> 18x + 3 = 39
  y.backward();
  EXPECT_FLOAT_EQ(x.grad().item(), 39.f);
}

TEST(Engine, FunctionalGradLeavesDotGradUntouched) {
  Tensor x = Tensor::from_vector({1, 2}, {2}).set_requires_grad();
  Tensor w = Tensor::from_vector({3, 4}, {2}).set_requires_grad();
  Tensor y = sum(mul(x, w));
  auto g = grad({y}, {x});
  EXPECT_EQ(g[0].to_vector(), (std::vector<float>{3, 4}));
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
}

TEST(Engine, GradWithRespectToIntermediateAndSeed) {
  Tensor x = Tensor::from_vector({1, -1, 2}, {3}).set_requires_grad();
  Tensor h = mul_scalar(x, 2.f);
  Tensor y = relu(h);
  Tensor seed = Tensor::from_vector({1, 1, 5}, {3});
  auto g = grad({y}, {h, x}, {seed});
  EXPECT_EQ(g[0].to_vector(), (std::vector<float>{1, 0, 5}));
  EXPECT_EQ(g[1].to_vector(), (std::vector<float>{2, 0, 10}));
}

TEST(Engine, UnusedInputGetsZeros) {
  Tensor x = Tensor::from_vector({1}, {1}).set_requires_grad();
  Tensor z = Tensor::from_vector({1, 2}, {2}).set_requires_grad();
  auto g = grad({sum(x)}, {x, z});
  EXPECT_EQ(g[1].to_vector(), (std::vector<float>{0, 0}));
}

TEST(Engine, NoGradRecordsNothing) {
  Tensor x = Tensor::from_vector({1}, {1}).set_requires_grad();
  NoGradGuard guard;
  Tensor y = mul_scalar(x, 2.f);
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
}

TEST(Engine, NonScalarBackwardNeedsSeed) {
  Tensor x = Tensor::from_vector({1, 2}, {2}).set_requires_grad();
  EXPECT_THROW(mul_scalar(x, 2.f).backward(), std::invalid_argument);
  EXPECT_THROW(grad({sum(x)}, {Tensor::zeros({1})}), std::invalid_argument);
}

TEST(Engine, OverrideReplacesRuleByOpName) {
  Tensor x = Tensor::from_vector({-1, 2}, {2}).set_requires_grad();
  Tensor y = sum(relu(relu(x)));  // the same op twice, like a reused ReLU module
  int calls = 0;
  BackwardOverrideGuard guard(Ops::relu, [&](Node&, const Tensor& dy, const std::vector<bool>&) {
    ++calls;
    return std::vector<Tensor>{mul_scalar(dy, 2.f)};
  });
  auto g = grad({y}, {x});
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(g[0].to_vector(), (std::vector<float>{4, 4}));
}

TEST(Engine, OutOfMemoryNamesTheOpAndTheShape) {
  // [2^23, 1] * [1, 2^23] asks for 2^46 floats: no machine has them, and the error says who asked.
  const std::int64_t n = std::int64_t{1} << 23;
  const Tensor column = Tensor::zeros({n, 1}), row = Tensor::zeros({1, n});
  try {
    (void)mul(column, row);
    FAIL() << "expected an out-of-memory error";
  } catch (const OutOfMemoryError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("[mul]"), std::string::npos) << message;
    EXPECT_NE(message.find("[8388608, 8388608]"), std::string::npos) << message;
    EXPECT_NE(message.find("bytes"), std::string::npos) << message;
  }
  EXPECT_EQ(add(column, column).numel(), n);  // and the engine still works
}

TEST(OpIds, EveryNodeIsNamedByItsOpId) {
  // Rules are keyed by OpId: a node whose name is not one would never meet its rule.
  const Tensor x = gradlens::testing::random_tensor({2, 3, 6, 6}, 1).set_requires_grad();
  const Tensor m = gradlens::testing::random_tensor({2, 4}, 2).set_requires_grad();
  const Tensor w = gradlens::testing::random_tensor({3, 4}, 3).set_requires_grad();
  const Tensor cw = gradlens::testing::random_tensor({2, 3, 3, 3}, 4).set_requires_grad();
  const std::int64_t index[] = {0, 1};
  const std::vector<std::pair<Tensor, OpId>> cases = {
      {conv2d(x, cw), Ops::conv2d},
      {conv2d_relu(x, cw, Tensor(), 1, 0), Ops::conv2d_relu},
      {conv2d_relu_pool(x, cw, Tensor(), 1, 0), Ops::conv2d_relu_pool},
      {linear(m, w), Ops::linear},
      {max_pool2d(x, 2), Ops::max_pool2d},
      {relu(m), Ops::relu},
      {add(m, m), Ops::add},
      {sub(m, m), Ops::sub},
      {mul(m, m), Ops::mul},
      {div(m, add_scalar(abs(m), 1.f)), Ops::div},
      {affine(m, 2.f, 1.f), Ops::affine},
      {abs(m), Ops::abs},
      {square(m), Ops::square},
      {sqrt(add_scalar(abs(m), 1.f)), Ops::sqrt},
      {softmax(m), Ops::softmax},
      {log_softmax(m), Ops::log_softmax},
      {sum(m), Ops::sum},
      {sum_dim(m, 0), Ops::sum_dim},
      {reshape(m, {4, 2}), Ops::reshape},
      {slice(m, 0, 1), Ops::slice},
      {cat({m, m}), Ops::cat},
      {index_rows(m, index), Ops::index_rows},
      {pick(m, index), Ops::pick},
      {permute(m, {1, 0}), Ops::gather},
      {exp(m), Ops::exp},
      {log(add_scalar(abs(m), 1.f)), Ops::log},
      {tanh(m), Ops::tanh},
      {sigmoid(m), Ops::sigmoid},
      {leaky_relu(m, 0.1f), Ops::leaky_relu},
      {clamp(m, -0.1f, 0.1f), Ops::clamp},
      {channel_affine(x, Tensor::full({3}, 2.f), Tensor::full({3}, 1.f)), Ops::channel_affine},
      {channel_affine(x, Tensor::full({3}, 2.f), Tensor::full({3}, 1.f), true),
       Ops::channel_affine_relu},
      {channel_affine(x, Tensor::full({3}, 2.f), Tensor::full({3}, 1.f), false, x),
       Ops::channel_affine_add},
      {channel_affine(x, Tensor::full({3}, 2.f), Tensor::full({3}, 1.f), true, x),
       Ops::channel_affine_add_relu}};
  for (const auto& [y, op] : cases) {
    ASSERT_TRUE(y.grad_fn() != nullptr) << op.name();
    EXPECT_EQ(y.grad_fn()->name(), op.name());
    EXPECT_NE(std::find(Ops::all.begin(), Ops::all.end(), op), Ops::all.end()) << op.name();
  }
}
