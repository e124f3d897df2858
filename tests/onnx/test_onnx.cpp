// ONNX import against ../shared/reference/resnet8: the PyTorch-exported ResNet8 (BatchNorm,
// residual adds, global average pooling) loads with PyTorch's module and parameter names and
// gives PyTorch's logits on all 10,000 test images; a bad file or an op outside the supported set
// is one clear error.
#include <gtest/gtest.h>

#if GRADLENS_WITH_ONNX

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "gradlens/attr/deep_lift.h"
#include "gradlens/attr/gradient_shap.h"
#include "gradlens/attr/guided_backprop.h"
#include "gradlens/attr/input_x_gradient.h"
#include "gradlens/attr/integrated_gradients.h"
#include "gradlens/attr/layer_grad_cam.h"
#include "gradlens/attr/noise_tunnel.h"
#include "gradlens/attr/occlusion.h"
#include "gradlens/attr/saliency.h"
#include "gradlens/autograd/engine.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/hooks.h"
#include "gradlens/autograd/node.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/data/cifar10.h"
#include "gradlens/data/transforms.h"
#include "gradlens/nn/safetensors.h"
#include "gradlens/onnx/model.h"
#include "tests/onnx/node_cases.h"
#include "tests/testing.h"

namespace {

using namespace gradlens;

TEST(Onnx, ResNet8LoadsWithPyTorchsNamesAndGivesItsLogitsOnEveryTestImage) {
  GRADLENS_SHARED_FILE(model_path, "reference/resnet8/resnet8.onnx");
  GRADLENS_SHARED_FILE(logits_path, "reference/resnet8/test_logits.safetensors");
  GRADLENS_SHARED_FILE(weights_path, "reference/resnet8/resnet8.safetensors");
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const auto model = gradlens::onnx::OnnxModel::load(model_path);
  EXPECT_EQ(model->nodes().size(), 33u);
  EXPECT_EQ(model->opset(), 13);
  EXPECT_NE(model->find("layer2.conv1"), nullptr);
  EXPECT_NE(model->find("layer3.shortcut.bn"), nullptr);
  EXPECT_NE(model->find("stem.relu"), nullptr);

  // The parameters are the state_dict's trainable tensors, by name and value.
  const nn::SafetensorsFile weights = nn::SafetensorsFile::load(weights_path);
  std::int64_t count = 0;
  for (const nn::Parameter& p : model->parameters()) {
    ASSERT_TRUE(weights.contains(p.name)) << p.name;
    EXPECT_EQ(p.tensor.to_vector(), weights.tensor(p.name).to_vector()) << p.name;
    count += p.tensor.numel();
  }
  EXPECT_EQ(count, 78042);

  const data::CifarSplit test =
      data::load_cifar10(std::filesystem::path(test_batch).parent_path().string(), false);
  const nn::SafetensorsFile reference = nn::SafetensorsFile::load(logits_path);
  const std::vector<float> expected = reference.tensor("test_logits").to_vector();
  const std::vector<std::int64_t> expected_pred = reference.int64s("test_pred");
  std::vector<float> logits;
  std::vector<std::int64_t> predicted;
  for (std::int64_t b = 0; b < test.size(); b += 1000) {
    std::vector<std::int64_t> ids(1000);
    for (std::int64_t i = 0; i < 1000; ++i) ids[static_cast<std::size_t>(i)] = b + i;
    const Tensor x = data::to_normalized_tensor(test, ids);
    Tensor out;
    {
      NoGradGuard no_grad;
      out = (*model)(x);
    }
    const std::vector<float> v = out.to_vector();
    logits.insert(logits.end(), v.begin(), v.end());
    const auto p = argmax_rows(out);
    predicted.insert(predicted.end(), p.begin(), p.end());
  }
  EXPECT_TRUE(gradlens::testing::allclose(logits, expected, 0, 6e-5));
  EXPECT_EQ(predicted, expected_pred);
}

// PyTorch's state_dict (parameters, BatchNorm statistics, the I64 counters left out) loads into
// the imported graph, BatchNorms folded again: after zeroing every parameter, the reference
// weights give the reference logits back.
TEST(Onnx, WeightsFromAStateDictReplaceTheFilesAndRefoldTheBatchNorms) {
  GRADLENS_SHARED_FILE(model_path, "reference/resnet8/resnet8.onnx");
  GRADLENS_SHARED_FILE(weights_path, "reference/resnet8/resnet8.safetensors");
  GRADLENS_SHARED_FILE(inputs_path, "reference/resnet8/inputs.safetensors");
  const auto model = gradlens::onnx::OnnxModel::load(model_path);
  const nn::SafetensorsFile inputs = nn::SafetensorsFile::load(inputs_path);
  std::map<std::string, Tensor> zeros;
  for (const nn::Parameter& p : model->parameters())
    zeros[p.name] = Tensor::zeros(p.tensor.shape());
  model->load_weights(zeros);
  NoGradGuard no_grad;
  EXPECT_FALSE(gradlens::testing::allclose(
      (*model)(inputs.tensor("inputs")), inputs.tensor("logits"), 0, 1e-3));
  std::map<std::string, Tensor> state = nn::SafetensorsFile::load(weights_path).float_tensors();
  model->load_weights(state);
  EXPECT_TRUE(gradlens::testing::allclose(
      (*model)(inputs.tensor("inputs")), inputs.tensor("logits"), 0, 3e-5));
  state["layer9.conv.weight"] = Tensor::zeros({1});
  EXPECT_THROW(model->load_weights(state), std::invalid_argument);  // named, nothing changed
  EXPECT_TRUE(gradlens::testing::allclose(
      (*model)(inputs.tensor("inputs")), inputs.tensor("logits"), 0, 3e-5));
}

TEST(Onnx, TheBatchNormFoldedExportGivesTheSameLogits) {
  GRADLENS_SHARED_FILE(folded_path, "reference/resnet8/resnet8_eval_bnfused.onnx");
  GRADLENS_SHARED_FILE(inputs_path, "reference/resnet8/inputs.safetensors");
  const auto model = gradlens::onnx::OnnxModel::load(folded_path);
  const nn::SafetensorsFile inputs = nn::SafetensorsFile::load(inputs_path);
  const Tensor out = (*model)(inputs.tensor("inputs"));
  EXPECT_TRUE(gradlens::testing::allclose(out, inputs.tensor("logits"), 0, 3e-5));
}

// fold_batch_norms: every BatchNorm of ResNet8 sits on a conv's own output, so all 9 fold; the
// logits stay within the README's tolerance and equal the exporter's folded graph within rounding,
// and load_weights still reaches both the convs and the folded BatchNorms.
TEST(Onnx, FoldingBatchNormsIntoTheConvsChangesNoResult) {
  GRADLENS_SHARED_FILE(model_path, "reference/resnet8/resnet8.onnx");
  GRADLENS_SHARED_FILE(folded_path, "reference/resnet8/resnet8_eval_bnfused.onnx");
  GRADLENS_SHARED_FILE(weights_path, "reference/resnet8/resnet8.safetensors");
  GRADLENS_SHARED_FILE(inputs_path, "reference/resnet8/inputs.safetensors");
  const auto model = gradlens::onnx::OnnxModel::load(model_path);
  const nn::SafetensorsFile inputs = nn::SafetensorsFile::load(inputs_path);
  const Tensor x = inputs.tensor("inputs");
  NoGradGuard no_grad;
  const Tensor unfolded = (*model)(x);
  EXPECT_EQ(model->fold_batch_norms(), 9u);
  EXPECT_EQ(model->fold_batch_norms(), 0u);  // once
  const Tensor folded = (*model)(x);
  EXPECT_TRUE(gradlens::testing::allclose(folded, unfolded, 0, 1e-5));
  EXPECT_TRUE(gradlens::testing::allclose(folded, inputs.tensor("logits"), 0, 3e-5));
  EXPECT_TRUE(gradlens::testing::allclose(
      folded, (*gradlens::onnx::OnnxModel::load(folded_path))(x), 0, 1e-5));
  std::map<std::string, Tensor> zeros;
  for (const nn::Parameter& p : model->parameters())
    zeros[p.name] = Tensor::zeros(p.tensor.shape());
  model->load_weights(zeros);
  EXPECT_FALSE(gradlens::testing::allclose((*model)(x), folded, 0, 1e-3));
  model->load_weights(nn::SafetensorsFile::load(weights_path).float_tensors());
  EXPECT_TRUE(gradlens::testing::allclose((*model)(x), folded, 0, 1e-6));
}

// How many nodes of each op the tape behind y holds.
std::map<std::string, int> ops_on_tape(const Tensor& y) {
  std::map<std::string, int> count;
  std::set<const Node*> seen;
  std::vector<const Node*> todo = {y.grad_fn().get()};
  while (!todo.empty()) {
    const Node* node = todo.back();
    todo.pop_back();
    if (node == nullptr || !seen.insert(node).second) continue;
    ++count[std::string(node->name())];
    for (const Tensor& in : node->inputs) todo.push_back(in.grad_fn().get());
  }
  return count;
}

// Once the BatchNorms are folded, each conv -> BatchNorm -> ReLU of ResNet8 whose conv output feeds
// nothing else (stem, and conv1 of each block: 4) runs as one conv2d_relu; a hook on one of the
// three modules, or a backward rule (DeepLift's), keeps that chain as separate ops.
TEST(Onnx, AFoldedConvAndItsReluRunAsOneOpWhenNothingWatchesThem) {
  GRADLENS_SHARED_FILE(model_path, "reference/resnet8/resnet8.onnx");
  const auto model = gradlens::onnx::OnnxModel::load(model_path);
  const Tensor x = gradlens::testing::random_tensor({2, 3, 32, 32}, 5).set_requires_grad(true);
  EXPECT_EQ(ops_on_tape((*model)(x))["conv2d_relu"], 0);  // a BatchNorm between them
  model->fold_batch_norms();
  EXPECT_EQ(ops_on_tape((*model)(x))["conv2d_relu"], 4);
  {
    const nn::ForwardHookGuard hook(*model->find("layer2.bn1"),
                                    [](const Tensor&, const Tensor& out) { return out; });
    EXPECT_EQ(ops_on_tape((*model)(x))["conv2d_relu"], 3);
  }
  {
    const BackwardOverrideGuard rule(Ops::relu, [](Node& n, const Tensor& g, const auto& needs) {
      return n.backward(g, needs);
    });
    EXPECT_EQ(ops_on_tape((*model)(x))["conv2d_relu"], 0);
  }
}

// Unfolded, each BatchNorm is one channel_affine, and the four whose output only a ReLU reads
// (stem, and bn1 of each block) take that ReLU along as one channel_affine_relu, under the same
// conditions as the conv's; each block's last BatchNorm before its residual add (bn2 of layer1,
// the shortcut's of layer2 and layer3) takes the add and the ReLU after it along as one
// channel_affine_add_relu. The results are the same bits as the separate ops'.
TEST(Onnx, ABatchNormAndItsReluRunAsOneOpWhenNothingWatchesThem) {
  GRADLENS_SHARED_FILE(model_path, "reference/resnet8/resnet8.onnx");
  const auto model = gradlens::onnx::OnnxModel::load(model_path);
  const Tensor x = gradlens::testing::random_tensor({2, 3, 32, 32}, 6).set_requires_grad(true);
  const Tensor fused = (*model)(x);
  auto ops = ops_on_tape(fused);
  EXPECT_EQ(ops["channel_affine_relu"], 4);
  EXPECT_EQ(ops["channel_affine_add_relu"], 3);
  EXPECT_EQ(ops["channel_affine"], 2);
  EXPECT_EQ(ops["add"] + ops["relu"] + ops["mul"], 0);
  const Tensor fused_grad = grad({sum(fused)}, {x})[0];
  {
    const nn::ForwardHookGuard hook(*model->find("layer2.bn1"),
                                    [](const Tensor&, const Tensor& out) { return out; });
    EXPECT_EQ(ops_on_tape((*model)(x))["channel_affine_relu"], 3);
  }
  {
    // A hook on the block (LayerGradCam on "layer3") sees its output, after the fused ReLU; one on
    // the shortcut sees the BatchNorm's own output: that block's tail runs as separate ops.
    const nn::ForwardHookGuard block(*model->find("layer3"),
                                     [](const Tensor&, const Tensor& out) { return out; });
    const nn::ForwardHookGuard shortcut(*model->find("layer2.shortcut"),
                                        [](const Tensor&, const Tensor& out) { return out; });
    const Tensor hooked = (*model)(x);
    ops = ops_on_tape(hooked);
    EXPECT_EQ(ops["channel_affine_add_relu"], 2);
    EXPECT_EQ(ops["add"], 1);
    EXPECT_TRUE(gradlens::testing::allclose(hooked, fused, 0, 0));
  }
  {
    const BackwardOverrideGuard rule(Ops::relu, [](Node& n, const Tensor& g, const auto& needs) {
      return n.backward(g, needs);
    });
    const Tensor separate = (*model)(x);
    ops = ops_on_tape(separate);
    EXPECT_EQ(ops["channel_affine_relu"] + ops["channel_affine_add_relu"], 0);
    EXPECT_EQ(ops["channel_affine"], 9);
    EXPECT_EQ(ops["add"], 3);
    EXPECT_TRUE(gradlens::testing::allclose(separate, fused, 0, 0));
    EXPECT_TRUE(gradlens::testing::allclose(grad({sum(separate)}, {x})[0], fused_grad, 0, 0));
  }
}

// Within the reference README's tolerance: every element within `atol`, except on at most
// `loose_images` images whose path crosses a ReLU kink within float32 rounding, which stay within
// `rel_l2` per-image relative L2 (which images they are depends on each engine's rounding).
::testing::AssertionResult within_readme(
    const Tensor& actual, const Tensor& expected, double atol, double rel_l2, int loose_images) {
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure()
           << "shape " << shape_str(actual.shape()) << " vs " << shape_str(expected.shape());
  int loose = 0;
  for (std::int64_t i = 0; i < actual.size(0); ++i) {
    const std::vector<float> ours = slice(actual, i, i + 1).to_vector();
    const std::vector<float> theirs = slice(expected, i, i + 1).to_vector();
    double diff = 0, norm = 0, worst = 0;
    for (std::size_t k = 0; k < ours.size(); ++k) {
      diff += (ours[k] - theirs[k]) * (ours[k] - theirs[k]);
      norm += theirs[k] * theirs[k];
      worst = std::max(worst, static_cast<double>(std::abs(ours[k] - theirs[k])));
    }
    if (worst <= atol) continue;
    const double rel = std::sqrt(diff / std::max(norm, 1e-300));
    if (++loose > loose_images || rel > rel_l2)
      return ::testing::AssertionFailure()
             << "image " << i << ": max|diff| " << worst << ", rel-L2 " << rel << " (loose image "
             << loose << " of " << loose_images << " allowed)";
  }
  return ::testing::AssertionSuccess();
}

// ResNet8, its 16 reference images and Captum's attributions of them.
class OnnxCaptum : public ::testing::Test {
 protected:
  void SetUp() override {
    GRADLENS_SHARED_FILE(model_path, "reference/resnet8/resnet8.onnx");
    GRADLENS_SHARED_FILE(inputs_path, "reference/resnet8/inputs.safetensors");
    GRADLENS_SHARED_FILE(attributions_path, "reference/resnet8/attributions.safetensors");
    model = gradlens::onnx::OnnxModel::load(model_path);
    const nn::SafetensorsFile inputs = nn::SafetensorsFile::load(inputs_path);
    x = inputs.tensor("inputs");
    labels = inputs.int64s("labels");
    reference = std::make_unique<nn::SafetensorsFile>(nn::SafetensorsFile::load(attributions_path));
  }
  std::unique_ptr<gradlens::onnx::OnnxModel> model;
  Tensor x;
  std::vector<std::int64_t> labels;
  std::unique_ptr<nn::SafetensorsFile> reference;
};

TEST_F(OnnxCaptum, IntegratedGradientsFlowThroughTheImportedGraph) {
  attr::IntegratedGradients ig(*model, {.n_steps = 50});
  const attr::Attributions a = ig.attribute(x, labels, Tensor::zeros(x.shape()));
  const Tensor expected = reference->tensor("ig_gausslegendre_50");
  // The README's tolerance: atol 3e-5, and per-image relative L2 5e-3 on an image whose path
  // crosses a ReLU's kink within float32 rounding (its image 15 between float32 and float64). Our
  // convolutions round differently from PyTorch's (Winograd's for the 3x3 ones), which moves
  // images 5 and 7 across a kink too (max|diff| 2.4e-4 and 1.9e-4, rel-L2 2e-4; every other
  // image within 2e-7). At most three such images.
  EXPECT_TRUE(within_readme(a.values, expected, 3e-5, 5e-3, 3));
}

// A folded model explains as the unfolded one does, within the README's tolerances except that
// folding rounds differently again: IG's paths of three images (not two) cross a ReLU's kink
// within float32 rounding, each still within the README's relative L2 (7e-4 at worst here).
TEST_F(OnnxCaptum, AFoldedModelGivesCaptumsIntegratedGradientsAndDeepLift) {
  model->fold_batch_norms();
  attr::IntegratedGradients ig(*model, {.n_steps = 50});
  EXPECT_TRUE(within_readme(ig.attribute(x, labels, Tensor::zeros(x.shape())).values,
                            reference->tensor("ig_gausslegendre_50"),
                            3e-5,
                            5e-3,
                            3));
  attr::DeepLift deeplift(*model);
  EXPECT_TRUE(
      gradlens::testing::allclose(deeplift.attribute(x, labels, Tensor::zeros(x.shape())).values,
                                  reference->tensor("deeplift"),
                                  0,
                                  2e-5));
}

// The rule-based methods see the imported graph's ops: BatchNorm is a product and a sum by
// per-channel constants (linear), the residual Add a sum, so DeepLift's rescale rule and
// GuidedBackprop's ReLU rule give Captum's answers; LayerGradCam finds layer2.conv2 by name.
TEST_F(OnnxCaptum, DeepLiftGuidedBackpropSaliencyAndLayerGradCamMatchCaptum) {
  const Tensor zeros = Tensor::zeros(x.shape());
  // The reference README's tolerances.
  attr::Saliency saliency(*model);
  EXPECT_TRUE(gradlens::testing::allclose(
      saliency.attribute(x, labels).values, reference->tensor("saliency"), 0, 4e-6));
  attr::DeepLift deeplift(*model);
  EXPECT_TRUE(gradlens::testing::allclose(
      deeplift.attribute(x, labels, zeros).values, reference->tensor("deeplift"), 0, 2e-5));
  attr::GuidedBackprop gbp(*model);
  EXPECT_TRUE(gradlens::testing::allclose(
      gbp.attribute(x, labels).values, reference->tensor("guided_backprop"), 0, 2e-6));
  attr::LayerGradCam gradcam(*model, "layer2.conv2");
  EXPECT_TRUE(gradlens::testing::allclose(gradcam.attribute(x, labels).values,
                                          reference->tensor("layer_grad_cam_layer2_conv2"),
                                          0,
                                          4e-7));
}

// The rest of the README's methods: InputXGradient, LayerGradCam on a whole block (layer3: the
// scope module runs on the block's last output), Occlusion, NoiseTunnel over IG with Captum's
// noise and GradientShap with its draws.
TEST_F(OnnxCaptum, BlockLayersOcclusionNoiseTunnelAndGradientShapMatchCaptum) {
  attr::InputXGradient ixg(*model);
  EXPECT_TRUE(within_readme(
      ixg.attribute(x, labels).values, reference->tensor("input_x_gradient"), 4e-6, 0, 0));
  attr::LayerGradCam block(*model, "layer3");
  EXPECT_TRUE(within_readme(
      block.attribute(x, labels).values, reference->tensor("layer_grad_cam_layer3"), 2e-6, 0, 0));
  attr::Occlusion occlusion(*model, {.sliding_window_shapes = {3, 8, 8}, .strides = {3, 4, 4}});
  EXPECT_TRUE(within_readme(
      occlusion.attribute(x, labels).values, reference->tensor("occlusion_8x8_s4"), 4e-5, 0, 0));

  attr::RandomDraws noise;
  noise.noise = reference->tensor("nt10.noise");
  attr::IntegratedGradients ig(*model);
  attr::NoiseTunnel nt(ig,
                       {.type = attr::NoiseTunnelType::SmoothGradSq,
                        .nt_samples = 10,
                        .stdevs = 0.2f,
                        .draws = noise});
  // The README lists 10 of the 16 images as branch-sensitive (rel-L2 2e-3), atol 1e-6 elsewhere.
  EXPECT_TRUE(within_readme(nt.attribute(x, labels, Tensor::zeros(x.shape())).values,
                            reference->tensor("nt10_ig_smoothgrad_sq"),
                            1e-6,
                            2e-3,
                            16));

  GRADLENS_SHARED_FILE(inputs_path, "reference/resnet8/inputs.safetensors");
  const Tensor baseline_set = nn::SafetensorsFile::load(inputs_path).tensor("baseline_set");
  attr::RandomDraws draws;
  draws.baseline_index = reference->int64s("gradient_shap.baseline_index");
  const std::vector<double> alphas = reference->float64s("gradient_shap.alphas");
  draws.alphas.assign(alphas.begin(), alphas.end());
  draws.noise = Tensor::zeros({16 * 20, 3, 32, 32});  // stdevs 0 draws zeros
  attr::GradientShap shap(*model, {.n_samples = 20, .stdevs = 0.f, .draws = draws});
  // atol 2e-6, and image 10 (or another kinked one) within rel-L2 2e-2.
  EXPECT_TRUE(within_readme(shap.attribute(x, labels, baseline_set).values,
                            reference->tensor("gradient_shap"),
                            2e-6,
                            2e-2,
                            2));
}

// Captum hooks nn.ReLU modules, so a model written with F.relu silently gets plain gradients from
// its DeepLift and GuidedBackprop (the README's relu_variants: max|diff| 0.677 and 1.41), and one
// nn.ReLU reused at every site makes its DeepLift raise. Our rules attach to the relu op, so the
// graph of either variant (the same ops; only the exporter's node names differ: "/layer1/Relu",
// "/layer1/Relu_1", or "/relu/Relu" at every site) gives the module version's answers.
TEST_F(OnnxCaptum, FunctionalAndSharedReluExportsGiveTheModuleVersionsAnswers) {
  GRADLENS_SHARED_FILE(model_path, "reference/resnet8/resnet8.onnx");
  std::ifstream in(model_path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const Tensor zeros = Tensor::zeros(x.shape());
  const Tensor deeplift_ref = reference->tensor("deeplift");
  const Tensor gbp_ref = reference->tensor("guided_backprop");
  for (const bool shared : {false, true}) {
    ::onnx::ModelProto proto;
    ASSERT_TRUE(proto.ParseFromString(bytes));
    std::map<std::string, int> count;
    for (auto& node : *proto.mutable_graph()->mutable_node()) {
      if (node.op_type() != "Relu") continue;
      // "/layer1/relu2/Relu" -> "/layer1/Relu_1" (functional), or "/relu/Relu" (shared)
      const std::string name = node.name();
      const std::string block = name.substr(0, name.find('/', 1));
      const std::string renamed =
          shared ? "/relu/Relu"
                 : (block == "/stem" ? "" : block) + "/Relu" +
                       (count[block] ? "_" + std::to_string(count[block]) : "");
      ++count[block];
      node.set_name(renamed);
    }
    std::string edited;
    proto.SerializeToString(&edited);
    const auto variant =
        gradlens::onnx::OnnxModel::parse(edited, shared ? "shared.onnx" : "functional.onnx");
    EXPECT_EQ(variant->find("layer1.relu1"), nullptr);  // the module names are gone
    attr::DeepLift deeplift(*variant);
    EXPECT_TRUE(gradlens::testing::allclose(
        deeplift.attribute(x, labels, zeros).values, deeplift_ref, 0, 2e-5))
        << (shared ? "shared" : "functional");
    attr::GuidedBackprop gbp(*variant);
    EXPECT_TRUE(gradlens::testing::allclose(gbp.attribute(x, labels).values, gbp_ref, 0, 2e-6))
        << (shared ? "shared" : "functional");
  }
}

TEST(Onnx, EvalAndAttributeTakeAnOnnxModelByItsExtension) {
  GRADLENS_SHARED_FILE(model_path, "reference/resnet8/resnet8.onnx");
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const std::string data = std::filesystem::path(test_batch).parent_path().string();
  const gradlens::testing::CliRun eval =
      gradlens::testing::run_gradlens("eval --model " + model_path + " --data " + data);
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NE(eval.out.find("69.51 % (6951/10000)"), std::string::npos) << eval.out;  // PyTorch's
  const std::string out = gradlens::testing::fresh_temp_dir("gradlens_onnx_cli") + "/a.safetensors";
  const gradlens::testing::CliRun gradcam = gradlens::testing::run_gradlens(
      "attribute layer_grad_cam --layer layer2.conv2 --model " + model_path + " --data " + data +
      " --indices 0:2 --out " + out);
  ASSERT_EQ(gradcam.exit_code, 0) << gradcam.err;
  // layer2.conv2 is 16 x 16; --interpolate would bring the maps to the image size.
  EXPECT_EQ(nn::SafetensorsFile::load(out).shape("attributions"), (Shape{2, 1, 16, 16}));
}

// A graph whose shapes only go wrong when it runs still names the node then, though the file's
// protobuf is long gone (the errors keep their own copy of the node's name).
// --weights takes a state_dict for an .onnx model and --fold-batchnorm folds its BatchNorms: the
// same accuracy; either flag with the tutorial Net's safetensors, or weights of another model,
// is one line naming the flag and the file.
TEST(Onnx, WeightsAndFoldBatchnormFlagsKeepTheAccuracy) {
  GRADLENS_SHARED_FILE(model_path, "reference/resnet8/resnet8.onnx");
  GRADLENS_SHARED_FILE(weights_path, "reference/resnet8/resnet8.safetensors");
  GRADLENS_SHARED_FILE(net_path, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const std::string data = std::filesystem::path(test_batch).parent_path().string();
  const gradlens::testing::CliRun eval =
      gradlens::testing::run_gradlens("eval --model " + model_path + " --weights " + weights_path +
                                      " --fold-batchnorm --data " + data);
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NE(eval.out.find("69.51 % (6951/10000)"), std::string::npos) << eval.out;
  const gradlens::testing::CliRun other = gradlens::testing::run_gradlens(
      "eval --model " + model_path + " --weights " + net_path + " --data " + data);
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.err.find("--weights " + net_path + ": [onnx] load_weights: unexpected tensor"),
            std::string::npos)
      << other.err;
  for (const std::string& flag : {" --weights " + weights_path, std::string(" --fold-batchnorm")}) {
    const gradlens::testing::CliRun net = gradlens::testing::run_gradlens(
        "attribute saliency --model " + net_path + flag + " --data " + data);
    EXPECT_NE(net.exit_code, 0);
    EXPECT_NE(net.err.find("goes with an .onnx --model"), std::string::npos) << net.err;
  }
}

TEST(Onnx, AnErrorWhileTheGraphRunsNamesTheNode) {
  gradlens::testing::OnnxGraphBuilder graph;
  ::onnx::NodeProto* node = graph.add_node("Flatten", {"x"}, "y");
  node->set_name("/head/Flatten");
  ::onnx::AttributeProto* axis = node->add_attribute();
  axis->set_name("axis");
  axis->set_type(::onnx::AttributeProto::INT);
  axis->set_i(5);
  const auto model = graph.parse("flatten.onnx");
  try {
    (*model)(Tensor::zeros({2, 3}));
    FAIL() << "flattened at axis 5 of a matrix";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("flatten.onnx: node '/head/Flatten' (Flatten): axis 5"),
              std::string::npos)
        << e.what();
  }
}

// MatMul broadcasts its batch dims as numpy does: [2, 1, 3, 4] x [5, 4, 2] -> [2, 5, 3, 2], each
// product checked by hand and the input gradient by central differences.
TEST(Onnx, MatMulBroadcastsBatchDims) {
  gradlens::testing::OnnxGraphBuilder graph;
  const Tensor b = gradlens::testing::random_tensor({5, 4, 2}, 3);
  graph.add_initializer("b", b);
  graph.add_node("MatMul", {"x", "b"}, "y");
  const auto model = graph.parse("matmul.onnx");
  const Tensor x = gradlens::testing::random_tensor({2, 1, 3, 4}, 4);
  const Tensor y = (*model)(x);
  ASSERT_EQ(y.shape(), (Shape{2, 5, 3, 2}));
  const auto xv = x.to_vector(), bv = b.to_vector(), yv = y.to_vector();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 5; ++j)
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 2; ++c) {
          double want = 0;
          for (int k = 0; k < 4; ++k) want += xv[(i * 3 + r) * 4 + k] * bv[(j * 4 + k) * 2 + c];
          EXPECT_NEAR(yv[((i * 5 + j) * 3 + r) * 2 + c], want, 1e-5);
        }
  gradlens::onnx::OnnxModel& m = *model;
  EXPECT_TRUE(
      gradlens::testing::gradcheck([&m](const std::vector<Tensor>& in) { return m(in[0]); }, {x}));
}

TEST(Onnx, InfoPrintsTheGraphAndReportExplainsAnImportedModel) {
  GRADLENS_SHARED_FILE(model_path, "reference/resnet8/resnet8.onnx");
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const gradlens::testing::CliRun info =
      gradlens::testing::run_gradlens("info --model " + model_path);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("input 'input' [N, 3, 32, 32], output 'logits'"), std::string::npos)
      << info.out;
  EXPECT_NE(info.out.find("33 nodes, 78,042 parameters, 25,003,264 FLOPs per image"),
            std::string::npos)
      << info.out;
  EXPECT_NE(info.out.find("/layer3/relu2/Relu"), std::string::npos) << info.out;
  const std::string dir = gradlens::testing::fresh_temp_dir("gradlens_onnx_report");
  const gradlens::testing::CliRun report = gradlens::testing::run_gradlens(
      "report --model " + model_path + " --data " +
      std::filesystem::path(test_batch).parent_path().string() +
      " --indices 0 --methods saliency,layer_grad_cam,lrp --out " + dir);
  ASSERT_EQ(report.exit_code, 0) << report.err;
  // LRP has no rule for BatchNorm's scale: skipped, saying so; GradCAM on the last block.
  EXPECT_NE(report.out.find("lrp                    skipped ([lrp] op"), std::string::npos)
      << report.out;
  std::ifstream page(dir + "/index.html");
  const std::string html((std::istreambuf_iterator<char>(page)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("Layer GradCAM (layer3)"), std::string::npos);
}

TEST(Onnx, BadFilesAndUnsupportedOpsAreOneClearError) {
  const std::string dir = gradlens::testing::fresh_temp_dir("gradlens_onnx_bad");
  const std::string garbage = dir + "/garbage.onnx";
  std::ofstream(garbage) << "this is not a protobuf";
  try {
    gradlens::onnx::OnnxModel::load(garbage);
    FAIL() << "loaded garbage";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(garbage), std::string::npos) << e.what();
  }
  try {
    gradlens::onnx::OnnxModel::load(dir + "/missing.onnx");
    FAIL() << "loaded a missing file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open"), std::string::npos) << e.what();
  }
}

}  // namespace

#endif  // GRADLENS_WITH_ONNX
