// Imported ONNX models on the GPU: ResNet8's logits, IG and DeepLift against the same calls on the
// CPU, and every ONNX node-test case the importer runs (its layout ops are gathers, its
// activations new kernels) on the device against the CPU.
#include <gtest/gtest.h>

#if GRADLENS_WITH_ONNX

#include <array>
#include <filesystem>

#include "gradlens/attr/deep_lift.h"
#include "gradlens/attr/integrated_gradients.h"
#include "gradlens/autograd/engine.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/nn/safetensors.h"
#include "gradlens/onnx/model.h"
#include "onnx/onnx_pb.h"
#include "tests/cuda/cuda_testing.h"
#include "tests/onnx/node_cases.h"
#include "tests/testing.h"

namespace {

namespace fs = std::filesystem;
using namespace gradlens;
using gradlens::testing::close_relative_to_max;
using gradlens::testing::gpu;
using CudaOnnx = gradlens::testing::CudaTest;

TEST_F(CudaOnnx, ResNet8LogitsIntegratedGradientsAndDeepLiftMatchTheCpu) {
  GRADLENS_SHARED_FILE(model_path, "reference/resnet8/resnet8.onnx");
  GRADLENS_SHARED_FILE(inputs_path, "reference/resnet8/inputs.safetensors");
  const auto cpu_model = gradlens::onnx::OnnxModel::load(model_path);
  const auto gpu_model = gradlens::onnx::OnnxModel::load(model_path);
  gpu_model->to(gpu());
  const nn::SafetensorsFile inputs = nn::SafetensorsFile::load(inputs_path);
  const Tensor x = slice(inputs.tensor("inputs"), 0, 2);
  const std::vector<std::int64_t> labels = {3, 8};
  {
    NoGradGuard no_grad;
    EXPECT_TRUE(close_relative_to_max((*gpu_model)(x.to(gpu())), (*cpu_model)(x), 1e-5));
  }
  attr::IntegratedGradients ig_cpu(*cpu_model, {.n_steps = 8}), ig_gpu(*gpu_model, {.n_steps = 8});
  EXPECT_TRUE(close_relative_to_max(ig_gpu.attribute(x.to(gpu()), labels, Tensor()).values,
                                    ig_cpu.attribute(x, labels, Tensor()).values,
                                    1e-4));
  attr::DeepLift dl_cpu(*cpu_model), dl_gpu(*gpu_model);
  EXPECT_TRUE(close_relative_to_max(dl_gpu.attribute(x.to(gpu()), labels, Tensor()).values,
                                    dl_cpu.attribute(x, labels, Tensor()).values,
                                    1e-4));
}

TEST_F(CudaOnnx, EveryNodeTestCaseRunsOnTheDeviceAsOnTheCpu) {
  if (!fs::is_directory(gradlens::testing::onnx_node_test_dir())) {
    if (gradlens::testing::running_in_ci()) FAIL() << "missing libonnx-testdata";
    GTEST_SKIP() << "missing " << gradlens::testing::onnx_node_test_dir();
  }
  auto cases = gradlens::testing::onnx_node_cases(gradlens::testing::kCnnNodeFamilies);
  const auto other = gradlens::testing::onnx_node_cases(gradlens::testing::kOtherNodeFamilies);
  cases.insert(cases.end(), other.begin(), other.end());
  int ran = 0;
  for (const fs::path& dir : cases) {
    gradlens::testing::OnnxNodeCase c = gradlens::testing::load_onnx_node_case(dir);
    if (!c.unsupported.empty()) continue;
    NoGradGuard no_grad;
    const Tensor on_cpu = (*c.model)(c.input);
    c.model->to(gpu());
    const Tensor on_gpu = (*c.model)(c.input.to(gpu())).to(kCPU);
    EXPECT_TRUE(close_relative_to_max(on_gpu, on_cpu, 1e-5)) << c.name;
    ++ran;
  }
  EXPECT_GE(ran, 170);
}

// A grouped Conv and a grouped ConvTranspose gather their weights by an index made once, whose
// device copy is made at the first call and kept: two forward and backward passes on the device
// equal the CPU's.
TEST_F(CudaOnnx, GroupedConvAndConvTransposeReuseTheirIndexOnTheDevice) {
  gradlens::testing::OnnxGraphBuilder graph;
  // 4 -> 6 channels and back to 4, each in 2 groups.
  graph.add_initializer("conv.weight", gradlens::testing::random_tensor({6, 2, 3, 3}, 1));
  graph.add_initializer("deconv.weight", gradlens::testing::random_tensor({6, 2, 2, 2}, 2));
  for (const auto& [op, in, w, out] :
       {std::array<std::string, 4>{"Conv", "x", "conv.weight", "h"},
        std::array<std::string, 4>{"ConvTranspose", "h", "deconv.weight", "y"}}) {
    ::onnx::AttributeProto* group = graph.add_node(op, {in, w}, out)->add_attribute();
    group->set_name("group");
    group->set_type(::onnx::AttributeProto::INT);
    group->set_i(2);
  }
  const auto cpu_model = graph.parse("grouped.onnx");
  const auto gpu_model = graph.parse("grouped.onnx");
  gpu_model->to(gpu());
  const Tensor x = gradlens::testing::random_tensor({2, 4, 7, 7}, 3);
  const auto run = [](gradlens::onnx::OnnxModel& model, const Tensor& input) {
    Tensor in = input.detach();
    in.set_requires_grad(true);
    const Tensor y = model(in);
    const Tensor dx = grad({sum(mul(y, y))}, {in})[0];
    return std::pair{y.to(kCPU), dx.to(kCPU)};
  };
  const auto [y_cpu, dx_cpu] = run(*cpu_model, x);
  ASSERT_EQ(y_cpu.shape(), (Shape{2, 4, 6, 6}));
  for (int call = 0; call < 2; ++call) {
    const auto [y_gpu, dx_gpu] = run(*gpu_model, x.to(gpu()));
    EXPECT_TRUE(close_relative_to_max(y_gpu, y_cpu, 1e-5)) << "call " << call;
    EXPECT_TRUE(close_relative_to_max(dx_gpu, dx_cpu, 1e-5)) << "call " << call;
  }
}

}  // namespace

#endif  // GRADLENS_WITH_ONNX
