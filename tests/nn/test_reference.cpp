// Parity with PyTorch 1.13 (../shared/reference): the pretrained Net's logits on all 10,000 test
// images, the 25-step SGD-momentum training run, and one batch's parameter and input gradients.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "gradlens/autograd/engine.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/data/cifar10.h"
#include "gradlens/data/transforms.h"
#include "gradlens/nn/lenet.h"
#include "gradlens/nn/loss.h"
#include "gradlens/nn/optim/sgd.h"
#include "gradlens/nn/safetensors.h"
#include "tests/testing.h"

using namespace gradlens;

namespace {

nn::Net pretrained_net(const std::string& path) {
  nn::Net net;
  net.load_state_dict(nn::SafetensorsFile::load(path).float_tensors());
  return net;
}

// max |a - b| <= rel * max |b|, per tensor (the README's "1e-5 relative to max|ref|").
::testing::AssertionResult close_relative_to_max(const Tensor& actual,
                                                 const Tensor& expected,
                                                 double rel) {
  const auto a = actual.to_vector(), e = expected.to_vector();
  if (a.size() != e.size()) return ::testing::AssertionFailure() << "sizes differ";
  double max_ref = 0, max_diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(e[i])));
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(a[i]) - e[i]));
  }
  if (max_diff <= rel * max_ref) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "max |diff| " << max_diff << " > " << rel << " * max|ref| " << max_ref << " for shape "
         << shape_str(actual.shape());
}

}  // namespace

TEST(Reference, PretrainedLogitsOnAllTestImages) {
  GRADLENS_SHARED_FILE(weights, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(logits_file, "reference/test_logits.safetensors");
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  nn::Net net = pretrained_net(weights);
  const auto ref = nn::SafetensorsFile::load(logits_file);
  const auto ref_logits = ref.tensor("logits").to_vector();
  const auto ref_pred = ref.int64s("predictions");
  const auto split = data::load_cifar10_file(test_batch);
  ASSERT_EQ(split.size(), 10000);
  EXPECT_EQ(split.labels, ref.int64s("labels"));

  NoGradGuard no_grad;
  double max_diff = 0;
  std::int64_t correct = 0, same_argmax = 0;
  std::vector<std::int64_t> idx(1000);
  for (std::int64_t start = 0; start < 10000; start += 1000) {
    std::iota(idx.begin(), idx.end(), start);
    const auto logits = net(data::to_normalized_tensor(split, idx)).to_vector();
    for (std::int64_t i = 0; i < 1000; ++i) {
      const float* row = logits.data() + i * 10;
      for (int c = 0; c < 10; ++c) {
        max_diff = std::max(max_diff,
                            std::fabs(static_cast<double>(row[c]) -
                                      ref_logits[static_cast<std::size_t>((start + i) * 10 + c)]));
      }
      const std::int64_t pred = std::max_element(row, row + 10) - row;
      same_argmax += pred == ref_pred[static_cast<std::size_t>(start + i)];
      correct += pred == split.labels[static_cast<std::size_t>(start + i)];
    }
  }
  EXPECT_LE(max_diff, 1e-4);
  EXPECT_EQ(same_argmax, 10000);
  EXPECT_EQ(correct, 5907);  // 59.07 %, as PyTorch
}

TEST(Reference, TwentyFiveTrainingSteps) {
  GRADLENS_SHARED_FILE(path, "reference/training_reference.safetensors");
  const auto ref = nn::SafetensorsFile::load(path);
  nn::Net net;
  std::map<std::string, Tensor> init;
  for (const auto& p : net.parameters()) init[p.name] = ref.tensor("init." + p.name);
  net.load_state_dict(init);
  nn::SGD sgd(net.parameters(), {.lr = 0.001f, .momentum = 0.9f});
  nn::CrossEntropyLoss criterion;
  const Tensor inputs = ref.tensor("inputs");
  const auto labels = ref.int64s("labels");
  const auto losses = ref.tensor("losses").to_vector();
  for (std::int64_t k = 0; k < 25; ++k) {
    sgd.zero_grad();
    const Tensor x = reshape(slice(inputs, k, k + 1), {4, 3, 32, 32});
    const std::vector<std::int64_t> y(labels.begin() + 4 * k, labels.begin() + 4 * k + 4);
    const Tensor loss = criterion(net(x), y);
    EXPECT_NEAR(loss.item(), losses[static_cast<std::size_t>(k)], 1e-5) << "step " << k;
    loss.backward();
    if (k == 0) {
      for (const auto& p : net.parameters()) {
        EXPECT_TRUE(
            close_relative_to_max(p.tensor.grad(), ref.tensor("step0_grad." + p.name), 1e-5))
            << p.name;
      }
    }
    sgd.step();
  }
  const auto params = net.parameters();
  for (std::size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(
        close_relative_to_max(params[i].tensor, ref.tensor("final." + params[i].name), 1e-5))
        << params[i].name;
    EXPECT_TRUE(close_relative_to_max(
        sgd.momentum_buffer(i), ref.tensor("final_momentum." + params[i].name), 1e-5))
        << params[i].name;
  }
}

TEST(Reference, PretrainedBatchGradients) {
  GRADLENS_SHARED_FILE(weights, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(path, "reference/training_reference.safetensors");
  const auto ref = nn::SafetensorsFile::load(path);
  nn::Net net = pretrained_net(weights);
  Tensor x = ref.tensor("batch8.inputs").set_requires_grad();
  const Tensor loss = nn::CrossEntropyLoss{}(net(x), ref.int64s("batch8.labels"));
  EXPECT_NEAR(loss.item(), ref.tensor("batch8.loss").item(), 1e-6);
  loss.backward();
  for (const auto& p : net.parameters()) {
    EXPECT_TRUE(close_relative_to_max(p.tensor.grad(), ref.tensor("batch8.grad." + p.name), 1e-5))
        << p.name;
  }
  EXPECT_TRUE(close_relative_to_max(x.grad(), ref.tensor("batch8.grad_input"), 1e-5));
}
