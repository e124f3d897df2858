// Modules, PyTorch's names and initialisation, state_dict loading, SGD's semantics, op errors.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>

#include "gradlens/autograd/engine.h"
#include "gradlens/autograd/hooks.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/data/transforms.h"
#include "gradlens/nn/evaluate.h"
#include "gradlens/nn/lenet.h"
#include "gradlens/nn/loss.h"
#include "gradlens/nn/optim/sgd.h"
#include "gradlens/nn/safetensors.h"
#include "tests/testing.h"

using namespace gradlens;

TEST(Net, ParameterNamesShapesAndCountMatchPyTorch) {
  nn::Net net;
  const std::vector<std::pair<std::string, Shape>> expected = {{"conv1.weight", {6, 3, 5, 5}},
                                                               {"conv1.bias", {6}},
                                                               {"conv2.weight", {16, 6, 5, 5}},
                                                               {"conv2.bias", {16}},
                                                               {"fc1.weight", {120, 400}},
                                                               {"fc1.bias", {120}},
                                                               {"fc2.weight", {84, 120}},
                                                               {"fc2.bias", {84}},
                                                               {"fc3.weight", {10, 84}},
                                                               {"fc3.bias", {10}}};
  const auto params = net.parameters();
  ASSERT_EQ(params.size(), expected.size());
  std::int64_t total = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(params[i].name, expected[i].first);
    EXPECT_EQ(params[i].tensor.shape(), expected[i].second);
    total += params[i].tensor.numel();
  }
  EXPECT_EQ(total, 62006);
}

TEST(Net, DefaultInitIsUniformWithinOneOverSqrtFanIn) {
  nn::Net net(7);
  const std::map<std::string, double> bounds = {{"conv1", 1 / std::sqrt(75.0)},
                                                {"conv2", 1 / std::sqrt(150.0)},
                                                {"fc1", 1 / std::sqrt(400.0)},
                                                {"fc2", 1 / std::sqrt(120.0)},
                                                {"fc3", 1 / std::sqrt(84.0)}};
  for (const auto& p : net.parameters()) {
    const double bound = bounds.at(p.name.substr(0, p.name.find('.')));
    const auto v = p.tensor.to_vector();
    double lo = 1e9, hi = -1e9, sq = 0;
    for (float x : v) {
      lo = std::min(lo, static_cast<double>(x));
      hi = std::max(hi, static_cast<double>(x));
      sq += static_cast<double>(x) * x;
    }
    EXPECT_GE(lo, -bound) << p.name;
    EXPECT_LE(hi, bound) << p.name;
    if (v.size() > 1000) {  // U(-b, b) has variance b^2 / 3
      EXPECT_NEAR(sq / v.size(), bound * bound / 3, 0.1 * bound * bound / 3) << p.name;
      EXPECT_GT(hi, 0.95 * bound) << p.name;
    }
  }
  nn::Net same(7), other(8);
  EXPECT_EQ(same.parameters()[0].tensor.to_vector(), net.parameters()[0].tensor.to_vector());
  EXPECT_NE(other.parameters()[0].tensor.to_vector(), net.parameters()[0].tensor.to_vector());
}

TEST(Net, LoadStateDictRejectsWrongShapesAndNamesWithoutChangingAnything) {
  nn::Net net(1), source(2);
  auto state = source.state_dict();
  const auto before = net.parameters()[0].tensor.to_vector();
  auto bad = state;
  bad["fc1.weight"] = Tensor::zeros({120, 401});
  try {
    net.load_state_dict(bad);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("fc1.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[120, 401]"), std::string::npos) << e.what();
  }
  EXPECT_EQ(net.parameters()[0].tensor.to_vector(), before);
  auto missing = state;
  missing.erase("fc3.bias");
  EXPECT_THROW(net.load_state_dict(missing), std::invalid_argument);
  auto extra = state;
  extra["fc4.weight"] = Tensor::zeros({1});
  EXPECT_THROW(net.load_state_dict(extra), std::invalid_argument);
  net.load_state_dict(state);
  EXPECT_EQ(net.parameters()[0].tensor.to_vector(), source.parameters()[0].tensor.to_vector());
}

TEST(Net, RejectsImagesOfTheWrongShape) {
  nn::Net net;
  try {
    net(Tensor::zeros({2, 1, 32, 32}));
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 1, 32, 32]"), std::string::npos) << e.what();
  }
}

TEST(Net, FusedConvReluGivesTheSameLogitsAndGradientsAsSeparateOps) {
  nn::Net net(7);
  const Tensor images = gradlens::testing::random_tensor({3, 3, 32, 32}, 8);
  auto logits_and_grad = [&](bool hooked) {
    // An identity hook on conv1 is something that sees the pre-ReLU output: no fusion there.
    std::optional<nn::ForwardHookGuard> hook;
    if (hooked) hook.emplace(*net.conv1, [](const Tensor&, const Tensor& out) { return out; });
    Tensor x = images.detach();
    x.set_requires_grad(true);
    const Tensor logits = net(x);
    const Tensor g = grad({sum(logits)}, {x})[0];
    return std::make_pair(logits.to_vector(), g.to_vector());
  };
  const auto fused = logits_and_grad(false);
  const auto separate = logits_and_grad(true);
  EXPECT_EQ(fused.first, separate.first);
  EXPECT_EQ(fused.second, separate.second);
}

TEST(Net, FusedConvReluPoolGivesTheSameLogitsAndGradientsAsSeparateOps) {
  // An identity hook on a pool sees the pooled output only, but keeps the pool a module call:
  // conv2d_relu, then max_pool2d. Input and weight gradients (training's dense path) alike.
  nn::Net net(11);
  const Tensor images = gradlens::testing::random_tensor({4, 3, 32, 32}, 12);
  auto run = [&](bool hooked) {
    std::optional<nn::ForwardHookGuard> hook1, hook2;
    if (hooked) {
      hook1.emplace(*net.pool1, [](const Tensor&, const Tensor& out) { return out; });
      hook2.emplace(*net.pool2, [](const Tensor&, const Tensor& out) { return out; });
    }
    Tensor x = images.detach();
    x.set_requires_grad(true);
    const Tensor logits = net(x);
    const std::vector<Tensor> g = grad(
        {sum(logits)}, {x, net.conv1->weight, net.conv1->bias, net.conv2->weight, net.conv2->bias});
    std::vector<std::vector<float>> out{logits.to_vector()};
    for (const Tensor& t : g) out.push_back(t.to_vector());
    return out;
  };
  const auto fused = run(false);
  const auto separate = run(true);
  ASSERT_EQ(fused.size(), separate.size());
  for (std::size_t i = 0; i < fused.size(); ++i) EXPECT_EQ(fused[i], separate[i]) << i;
}

TEST(Net, ABackwardRuleSetAfterAFusedForwardIsAnErrorNotASilentSkip) {
  nn::Net net(7);
  Tensor x = gradlens::testing::random_tensor({1, 3, 32, 32}, 9);
  x.set_requires_grad(true);
  const Tensor logits = net(x);  // no rule active: conv2d + relu fused
  BackwardOverrideGuard rule(
      Ops::relu,
      [](Node& node, const Tensor& g, const std::vector<bool>& n) { return node.backward(g, n); });
  try {
    grad({sum(logits)}, {x});
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("before the forward"), std::string::npos) << e.what();
  }
}

namespace {

// torch.optim.SGD on one scalar parameter with gradient g(p) = p (loss p^2 / 2), three steps.
std::vector<float> sgd_reference(float p, nn::SGDOptions o) {
  std::vector<float> out;
  float buf = 0;
  for (int step = 0; step < 3; ++step) {
    float g = p + o.weight_decay * p;
    if (o.momentum != 0) {
      buf = step == 0 ? g : o.momentum * buf + (1 - o.dampening) * g;
      g = o.nesterov ? g + o.momentum * buf : buf;
    }
    p -= o.lr * g;
    out.push_back(p);
  }
  return out;
}

}  // namespace

TEST(SGD, MatchesTorchSemantics) {
  const std::vector<nn::SGDOptions> cases = {
      {.lr = 0.1f},
      {.lr = 0.1f, .momentum = 0.9f},
      {.lr = 0.1f, .momentum = 0.9f, .dampening = 0.5f},
      {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f, .nesterov = true},
  };
  for (const auto& o : cases) {
    Tensor p = Tensor::from_vector({2.f}, {1}).set_requires_grad();
    nn::SGD sgd({{"p", p}}, o);
    std::vector<float> got;
    for (int step = 0; step < 3; ++step) {
      sgd.zero_grad();
      mul_scalar(mul(p, p), 0.5f).backward();
      sgd.step();
      got.push_back(p.item());
    }
    const auto want = sgd_reference(2.f, o);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << "step " << i;
  }
  EXPECT_THROW(nn::SGD({}, {.lr = 0.1f, .nesterov = true}), std::invalid_argument);
}

TEST(Ops, ErrorsNameTheOpAndTheShapes) {
  auto message = [](auto&& fn) {
    try {
      fn();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(
      message([] {
        conv2d(Tensor::zeros({8, 1, 32, 32}), Tensor::zeros({6, 3, 5, 5}));
      }),
      "[conv2d] weight expects 3 input channels, got input [8, 1, 32, 32], weight [6, 3, 5, 5]");
  EXPECT_NE(message([] {
              linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 5}));
            }).find("[linear]"),
            std::string::npos);
  EXPECT_NE(message([] {
              add(Tensor::zeros({2, 3}), Tensor::zeros({4}));
            }).find("[2, 3] and [4]"),
            std::string::npos);
  const std::vector<std::int64_t> bad_target = {10};
  EXPECT_NE(message([&] {
              cross_entropy(Tensor::zeros({1, 10}), bad_target);
            }).find("target 10"),
            std::string::npos);
  EXPECT_NE(message([] {
              max_pool2d(Tensor::zeros({1, 1, 1, 1}), 2);
            }).find("[max_pool2d]"),
            std::string::npos);
  EXPECT_NE(message([] {
              reshape(Tensor::zeros({2, 3}), {4, 2});
            }).find("[reshape]"),
            std::string::npos);
  EXPECT_THROW(Tensor::zeros({1}).to(Device::parse("cuda")), std::runtime_error);
  EXPECT_THROW(Device::parse("tpu"), std::invalid_argument);
}

TEST(CrossEntropy, MatchesHandComputedValue) {
  const Tensor logits = Tensor::from_vector({1, 2, 3, 0, 0, 0}, {2, 3});
  const std::vector<std::int64_t> t = {2, 0};
  const double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0;
  const double l1 = std::log(3.0);
  EXPECT_NEAR(nn::CrossEntropyLoss{}(logits, t).item(), (l0 + l1) / 2, 1e-6);
}

// Calling a child as child->forward(x) would skip its hooks: forward is not the way in.
template <class M>
concept PublicForward = requires(M& m, const Tensor& x) {
  m.forward(x);
};
static_assert(!PublicForward<nn::Net> && !PublicForward<nn::Conv2d> && !PublicForward<nn::Module>);

TEST(Sequential, RunsItsChildrenInOrderWithPyTorchsNamesAndTheirHooks) {
  nn::Generator gen(3);
  auto conv = std::make_shared<nn::Conv2d>(3, 4, 3, gen);
  auto fc = std::make_shared<nn::Linear>(4 * 30 * 30, 10, gen);
  nn::Sequential model{conv, std::make_shared<nn::ReLU>(), std::make_shared<nn::Flatten>(), fc};
  EXPECT_EQ(model.size(), 4);
  EXPECT_EQ(model.module_names(), (std::vector<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(model.state_dict().count("3.weight"), 1u);
  int conv_calls = 0;
  const nn::ForwardHookGuard hook(*conv, [&](const Tensor&, const Tensor& out) {
    ++conv_calls;
    return out;
  });
  const Tensor x = gradlens::testing::random_tensor({2, 3, 32, 32}, 4);
  const Tensor y = model(x);
  EXPECT_EQ(conv_calls, 1);
  const Tensor expected = (*fc)(reshape(relu((*conv)(x)), {2, 4 * 30 * 30}));
  EXPECT_TRUE(gradlens::testing::allclose(y, expected, 0, 0));
  EXPECT_EQ(nn::Flatten(2)(Tensor::zeros({2, 3, 4, 5})).shape(), (Shape{2, 3, 20}));
  EXPECT_THROW(nn::Flatten(4)(Tensor::zeros({2, 3})), std::invalid_argument);
}

TEST(Evaluate, CountsThePredictionsOfEveryImageInBatches) {
  nn::Net net(4);
  data::CifarSplit split;
  for (int i = 0; i < 5; ++i) {
    for (int b = 0; b < 3072; ++b)
      split.images.push_back(static_cast<std::uint8_t>((b * 7 + i * 31) % 256));
    split.labels.push_back(i % 10);
  }
  const nn::EvalResult r = nn::evaluate(net, split, 2, kCPU);  // batches of 2, 2 and 1
  const std::vector<std::int64_t> all = {0, 1, 2, 3, 4};
  EXPECT_EQ(r.predictions, nn::predict(net, data::to_normalized_tensor(split, all)));
  EXPECT_EQ(r.total, 5);
  std::int64_t correct = 0;
  for (int i = 0; i < 5; ++i) correct += r.predictions[static_cast<std::size_t>(i)] == i % 10;
  EXPECT_EQ(r.correct, correct);
  EXPECT_THROW(nn::evaluate(net, split, 0, kCPU), std::invalid_argument);
  const std::string missing = "/nonexistent/model.safetensors";
  try {
    nn::load_model(net, missing);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
}
