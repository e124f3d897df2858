// LayerGradCam, interpolate and GuidedGradCam against Captum on the PUBLIC images, plus hand-made
// interpolation cases, batching invariance and the unknown-layer error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <stdexcept>

#include "gradlens/attr/guided_grad_cam.h"
#include "gradlens/attr/interpolate.h"
#include "gradlens/attr/layer_grad_cam.h"
#include "gradlens/autograd/ops.h"
#include "tests/attr/reference.h"

using namespace gradlens;
using gradlens::testing::allclose;
using gradlens::testing::matches_reference;
using gradlens::testing::max_abs_diff;
using gradlens::testing::report_difference;

TEST(LayerGradCam, Conv2MatchesCaptum) {
  GRADLENS_PUBLIC_SET(set);
  attr::LayerGradCam cam(*set->net, "conv2");
  const Tensor values = cam.attribute(set->inputs, set->labels).values;
  const Tensor expected = set->attributions.tensor("layer_grad_cam_conv2");
  ASSERT_EQ(values.shape(), (Shape{16, 1, 10, 10}));
  report_difference("layer_grad_cam_conv2", values, expected);
  EXPECT_TRUE(allclose(values, expected, 0, 8e-7));
}

TEST(LayerGradCam, UpsampledNearestMatchesCaptum) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor ref = set->attributions.tensor("layer_grad_cam_conv2");
  const Tensor expected = set->attributions.tensor("layer_grad_cam_conv2.upsampled_nearest");
  // Nearest copies values: from Captum's own map the result is bit-exact.
  EXPECT_TRUE(
      allclose(attr::interpolate(ref, 32, 32, attr::Interpolation::Nearest), expected, 0, 0));
  attr::LayerGradCam cam(*set->net, "conv2");
  const Tensor ours = attr::interpolate(cam.attribute(set->inputs, set->labels).values, 32, 32);
  report_difference("layer_grad_cam_conv2.upsampled_nearest", ours, expected);
  EXPECT_TRUE(allclose(ours, expected, 0, 8e-7));
}

TEST(LayerGradCam, UpsampledBilinearMatchesCaptum) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor ref = set->attributions.tensor("layer_grad_cam_conv2");
  const Tensor expected = set->attributions.tensor("layer_grad_cam_conv2.upsampled_bilinear");
  const Tensor from_ref = attr::interpolate(ref, 32, 32, attr::Interpolation::Bilinear);
  report_difference("upsampled_bilinear (from Captum's map)", from_ref, expected);
  EXPECT_TRUE(allclose(from_ref, expected, 0, 0));  // bit-exact from the same map
  attr::LayerGradCam cam(*set->net, "conv2");
  const Tensor ours = attr::interpolate(
      cam.attribute(set->inputs, set->labels).values, 32, 32, attr::Interpolation::Bilinear);
  report_difference("layer_grad_cam_conv2.upsampled_bilinear", ours, expected);
  EXPECT_TRUE(allclose(ours, expected, 0, 7e-7));
}

TEST(Interpolate, NearestTakesFloorOfDstTimesScale) {
  // 10 -> 32 (README): 0-3 -> 0, 4-6 -> 1, 7-9 -> 2, 10-12 -> 3, 13-15 -> 4, 16-19 -> 5,
  // 20-22 -> 6, 23-25 -> 7, 26-28 -> 8, 29-31 -> 9.
  std::vector<float> ramp(10);
  for (int i = 0; i < 10; ++i) ramp[static_cast<std::size_t>(i)] = static_cast<float>(i);
  const auto cols = attr::interpolate(Tensor::from_vector(ramp, {1, 1, 1, 10}), 1, 32).to_vector();
  const std::vector<float> expected = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4,
                                       5, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9};
  EXPECT_EQ(cols, expected);
  // Downsampling and a same-size dim: 4 -> 3 takes floor(d * 4 / 3) = 0, 1, 2.
  const auto down =
      attr::interpolate(Tensor::from_vector({1, 2, 3, 4}, {1, 1, 1, 4}), 1, 3).to_vector();
  EXPECT_EQ(down, (std::vector<float>{1, 2, 3}));
}

TEST(Interpolate, BilinearMatchesPyTorchOnAHandCase) {
  // F.interpolate([[1, 2], [3, 4]], (4, 4), mode='bilinear', align_corners=False)
  const auto out =
      attr::interpolate(
          Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2}), 4, 4, attr::Interpolation::Bilinear)
          .to_vector();
  const std::vector<float> expected = {1.0f,
                                       1.25f,
                                       1.75f,
                                       2.0f,
                                       1.5f,
                                       1.75f,
                                       2.25f,
                                       2.5f,
                                       2.5f,
                                       2.75f,
                                       3.25f,
                                       3.5f,
                                       3.0f,
                                       3.25f,
                                       3.75f,
                                       4.0f};
  EXPECT_TRUE(allclose(out, expected, 0, 1e-7));
  // Several maps and channels keep their own planes; the result stays [N, C, H, W].
  const Tensor maps = Tensor::from_vector({0, 0, 0, 0, 1, 1, 1, 1}, {2, 1, 2, 2});
  const Tensor up = attr::interpolate(maps, 3, 5, attr::Interpolation::Bilinear);
  EXPECT_EQ(up.shape(), (Shape{2, 1, 3, 5}));
  const auto v = up.to_vector();
  EXPECT_TRUE(std::all_of(v.begin(), v.begin() + 15, [](float x) { return std::fabs(x) < 1e-6f; }));
  EXPECT_TRUE(
      std::all_of(v.begin() + 15, v.end(), [](float x) { return std::fabs(x - 1.f) < 1e-6f; }));
}

TEST(Interpolate, RejectsBadShapesAndModes) {
  EXPECT_THROW(attr::interpolate(Tensor::zeros({4, 10, 10}), 32, 32), std::invalid_argument);
  EXPECT_THROW(attr::interpolate(Tensor::zeros({1, 1, 10, 10}), 0, 32), std::invalid_argument);
  EXPECT_EQ(attr::parse_interpolation("bilinear"), attr::Interpolation::Bilinear);
  EXPECT_THROW(attr::parse_interpolation("bicubic"), std::invalid_argument);
}

TEST(LayerGradCam, BatchedChunkedAndSingleCallsAgree) {
  GRADLENS_PUBLIC_SET(set);
  attr::LayerGradCam cam(*set->net, "conv2");
  const Tensor all = cam.attribute(set->inputs, set->labels).values;
  attr::LayerGradCam chunked(*set->net, "conv2");
  chunked.batching().set_max_rows(5);  // chunks of 5, 5, 5, 1
  EXPECT_TRUE(allclose(chunked.attribute(set->inputs, set->labels).values, all, 0, 1e-7));
  for (std::int64_t i = 0; i < 16; ++i) {
    const std::int64_t target = set->labels[static_cast<std::size_t>(i)];
    const Tensor one = cam.attribute(slice(set->inputs, i, i + 1), std::span(&target, 1)).values;
    EXPECT_TRUE(allclose(one, slice(all, i, i + 1), 0, 1e-6)) << "image " << i;
  }
}

TEST(LayerGradCam, ReluAndLayerInputOptions) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor x = slice(set->inputs, 0, 8);
  const std::vector<std::int64_t> t(set->labels.begin(), set->labels.begin() + 8);
  const Tensor plain = attr::LayerGradCam(*set->net, "conv2").attribute(x, t).values;
  const Tensor clipped =
      attr::LayerGradCam(*set->net, "conv2", {.relu_attributions = true}).attribute(x, t).values;
  EXPECT_TRUE(allclose(clipped, relu(plain), 0, 0));
  // relu2's input is conv2's output: the same map.
  const Tensor via_input =
      attr::LayerGradCam(*set->net, "relu2", {.attribute_to_layer_input = true})
          .attribute(x, t)
          .values;
  EXPECT_TRUE(allclose(via_input, plain, 0, 1e-7));
  // A 2-D layer (fc1 [N, 120]) gives [N, 1] = sum_d grad_d * act_d.
  const Tensor fc = attr::LayerGradCam(*set->net, "fc1").attribute(x, t).values;
  EXPECT_EQ(fc.shape(), (Shape{8, 1}));
}

TEST(LayerGradCam, UnknownLayerListsTheValidNames) {
  GRADLENS_PUBLIC_SET(set);
  try {
    attr::LayerGradCam cam(*set->net, "conv3");
    FAIL() << "no error for an unknown layer";
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    for (const char* part : {"[layer_grad_cam]", "'conv3'", "conv1", "conv2", "pool2", "relu4"})
      EXPECT_NE(message.find(part), std::string::npos) << message;
  }
  try {
    attr::GuidedGradCam ggc(*set->net, "fc9");
    FAIL() << "no error for an unknown layer";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("[guided_grad_cam] unknown layer 'fc9'"),
              std::string::npos)
        << e.what();
  }
}

TEST(GuidedGradCam, Conv2MatchesCaptum) {
  GRADLENS_PUBLIC_SET(set);
  attr::GuidedGradCam ggc(*set->net, "conv2");
  const Tensor values = ggc.attribute(set->inputs, set->labels).values;
  const Tensor expected = set->attributions.tensor("guided_grad_cam_conv2");
  ASSERT_EQ(values.shape(), (Shape{16, 3, 32, 32}));
  report_difference("guided_grad_cam_conv2", values, expected);
  EXPECT_TRUE(allclose(values, expected, 0, 2e-7));
}

TEST(GuidedGradCam, IsGuidedBackpropTimesTheUpsampledReluCam) {
  GRADLENS_PUBLIC_SET(set);
  const Tensor x = slice(set->inputs, 0, 4);
  const std::vector<std::int64_t> t(set->labels.begin(), set->labels.begin() + 4);
  const Tensor cam =
      attr::LayerGradCam(*set->net, "conv2", {.relu_attributions = true}).attribute(x, t).values;
  const Tensor gbp = attr::GuidedBackprop(set->forward).attribute(x, t).values;
  const Tensor bilinear =
      attr::GuidedGradCam(*set->net, "conv2", {.mode = attr::Interpolation::Bilinear})
          .attribute(x, t)
          .values;
  EXPECT_TRUE(allclose(
      bilinear, mul(gbp, attr::interpolate(cam, 32, 32, attr::Interpolation::Bilinear)), 0, 0));
  // fc1's output is no image map: a clear error rather than a silent empty tensor.
  attr::GuidedGradCam flat(*set->net, "fc1");
  EXPECT_THROW(flat.attribute(x, t), std::invalid_argument);
}
