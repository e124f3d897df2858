// What a user reaches for first: argmax and predict, x[i], printing a tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "gradlens/autograd/ops.h"
#include "gradlens/nn/lenet.h"
#include "tests/testing.h"

using namespace gradlens;

TEST(TensorApi, ArgmaxRowsTakesTheFirstMaximumAndNaNWins) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor x = Tensor::from_vector({1, 3, 3, 0, 5, nan, 2, 7, -1, -1, -1, -1}, {3, 4});
  EXPECT_EQ(argmax_rows(x), (std::vector<std::int64_t>{1, 1, 0}));
  EXPECT_THROW(argmax_rows(Tensor::zeros({4})), std::invalid_argument);
}

TEST(TensorApi, PredictIsTheArgmaxOfTheLogits) {
  nn::Net net(5);
  const Tensor x = gradlens::testing::random_tensor({3, 3, 32, 32}, 8);
  EXPECT_EQ(nn::predict(net, x), argmax_rows(net(x)));
}

TEST(TensorApi, IndexingTakesARowAndStaysOnTheTape) {
  const Tensor x = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {3, 2}).set_requires_grad();
  EXPECT_EQ(x[1].to_vector(), (std::vector<float>{2, 3}));
  EXPECT_EQ(x[1].shape(), (Shape{2}));
  EXPECT_EQ(x[-1].to_vector(), (std::vector<float>{4, 5}));
  sum(x[2]).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{0, 0, 0, 0, 1, 1}));
  EXPECT_THROW(x[3], std::invalid_argument);
  EXPECT_THROW(x[-4], std::invalid_argument);
}

TEST(TensorApi, PrintsLikePyTorch) {
  std::ostringstream small;
  small << Tensor::from_vector({0.5f, -1.f, 2.25f, 3.f}, {2, 2});
  EXPECT_EQ(small.str(),
            "tensor([[ 0.5000, -1.0000],\n"
            "        [ 2.2500,  3.0000]], shape [2, 2], cpu)");
  std::ostringstream big;
  big << Tensor::zeros({10});
  EXPECT_EQ(big.str(),
            "tensor([0.0000, 0.0000, 0.0000, ..., 0.0000, 0.0000, 0.0000], shape [10], cpu)");
  std::ostringstream none;
  none << Tensor();
  EXPECT_EQ(none.str(), "tensor(undefined)");
}
