// The tape: backward accumulation into leaves, functional grad, no-grad mode, overrides.
#include <gtest/gtest.h>

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
  BackwardOverrideGuard guard("relu", [&](Node&, const Tensor& dy, const std::vector<bool>&) {
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
