// `gradlens attribute` as a user runs it: reproduces Captum's reference attributions through the
// command line (--out read back), and every bad input is a one-line error with a non-zero exit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gradlens/attr/registry.h"
#include "gradlens/data/file.h"
#include "gradlens/nn/safetensors.h"
#include "tests/testing.h"

namespace fs = std::filesystem;
using gradlens::nn::SafetensorsFile;

namespace {

gradlens::testing::CliRun run(const std::string& args) {
  return gradlens::testing::run_gradlens("attribute " + args + " --threads 2");
}

// A failing run: non-zero exit, exactly one line on stderr, which mentions `needle`.
void expect_one_line_error(const std::string& args, const std::string& needle) {
  const gradlens::testing::CliRun r = run(args);
  EXPECT_NE(r.exit_code, 0) << args;
  EXPECT_EQ(gradlens::testing::count_lines(r.err), 1) << args << "\n" << r.err;
  EXPECT_EQ(r.err.rfind("gradlens: error: ", 0), 0u) << args << "\n" << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\n" << r.err;
}

}  // namespace

TEST(AttributeCli, IntegratedGradientsReproducesCaptum) {
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(inputs, "reference/public_inputs.safetensors");
  GRADLENS_SHARED_FILE(reference, "reference/public_attributions.safetensors");
  const std::string out =
      (fs::path(gradlens::testing::fresh_temp_dir("gradlens_attr_cli")) / "ig.safetensors")
          .string();
  const gradlens::testing::CliRun r =
      run("integrated_gradients --model " + model + " --inputs " + inputs +
          " --n-steps 50 --method gausslegendre --delta --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("n_steps=50, method=gausslegendre"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("attributions [16, 3, 32, 32], delta [16]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("|delta|"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("took "), std::string::npos) << r.out;

  const auto got = SafetensorsFile::load(out);
  const auto ref = SafetensorsFile::load(reference);
  EXPECT_TRUE(gradlens::testing::allclose(
      got.tensor("attributions"), ref.tensor("ig_gausslegendre_50"), 0.0, 3e-4));
  EXPECT_TRUE(gradlens::testing::allclose(
      got.tensor("delta"), ref.tensor("ig_gausslegendre_50.delta"), 0.0, 3e-5));
  EXPECT_EQ(got.int64s("targets"), SafetensorsFile::load(inputs).int64s("labels"));

  // The delta costs two forward passes an image: computed only when asked.
  const gradlens::testing::CliRun plain =
      run("integrated_gradients --model " + model + " --inputs " + inputs + " --out " + out);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_NE(plain.out.find("attributions [16, 3, 32, 32]\n"), std::string::npos) << plain.out;
  EXPECT_FALSE(SafetensorsFile::load(out).contains("delta"));
}

TEST(AttributeCli, SaliencyOnATestImage) {
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  GRADLENS_SHARED_FILE(reference, "reference/public_attributions.safetensors");
  const std::string data = fs::path(test_batch).parent_path().string();
  const std::string out =
      (fs::path(gradlens::testing::fresh_temp_dir("gradlens_attr_cli")) / "saliency.safetensors")
          .string();
  const gradlens::testing::CliRun r =
      run("saliency --model " + model + " --data " + data + " --indices 3 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("attributions [1, 3, 32, 32]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("plane"), std::string::npos) << r.out;  // test image 3's label

  // Test image 3 is row 3 of the PUBLIC set.
  const std::vector<float> all = SafetensorsFile::load(reference).tensor("saliency").to_vector();
  const std::vector<float> row3(all.begin() + 3 * 3072, all.begin() + 4 * 3072);
  EXPECT_TRUE(gradlens::testing::allclose(
      SafetensorsFile::load(out).tensor("attributions").to_vector(), row3, 0.0, 2e-6));
}

TEST(AttributeCli, GradientShapWithCaptumsDrawsReproducesCaptum) {
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(inputs, "reference/public_inputs.safetensors");
  GRADLENS_SHARED_FILE(stochastic, "reference/public_stochastic.safetensors");
  const std::string out = (fs::path(gradlens::testing::fresh_temp_dir("gradlens_attr_cli")) /
                           "gradient_shap.safetensors")
                              .string();
  const gradlens::testing::CliRun r =
      run("gradient_shap --model " + model + " --inputs " + inputs + " --baselines " + inputs +
          " --n-samples 10 --gs-stdevs 0.09 --draws " + stochastic +
          " --draws-prefix gradient_shap_noisy. --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("baselines:   " + inputs + " [8, 3, 32, 32]"), std::string::npos) << r.out;
  EXPECT_TRUE(
      gradlens::testing::allclose(SafetensorsFile::load(out).tensor("attributions"),
                                  SafetensorsFile::load(stochastic).tensor("gradient_shap_noisy"),
                                  0.0,
                                  5e-7));
}

TEST(AttributeCli, NoiseTunnelWithCaptumsNoiseReproducesCaptum) {
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(inputs, "reference/public_inputs.safetensors");
  GRADLENS_SHARED_FILE(stochastic, "reference/public_stochastic.safetensors");
  const std::string out =
      (fs::path(gradlens::testing::fresh_temp_dir("gradlens_attr_cli")) / "nt.safetensors")
          .string();
  const gradlens::testing::CliRun r =
      run("integrated_gradients --model " + model + " --inputs " + inputs +
          " --noise-tunnel smoothgrad --nt-samples 10 --stdevs 0.2 --draws " + stochastic +
          " --draws-prefix nt10. --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("noise_tunnel(smoothgrad, nt_samples=10"), std::string::npos) << r.out;
  // The README's bound for every element (IG under noise is branch-sensitive on a few rows).
  EXPECT_TRUE(
      gradlens::testing::allclose(SafetensorsFile::load(out).tensor("attributions"),
                                  SafetensorsFile::load(stochastic).tensor("nt10_ig_smoothgrad"),
                                  0.0,
                                  2e-3));
}

TEST(AttributeCli, BadInputsAreOneLineErrors) {
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const std::string data = fs::path(test_batch).parent_path().string();
  const std::string common = " --model " + model + " --data " + data;
  expect_one_line_error("no_such_method" + common, "unknown method 'no_such_method'");
  expect_one_line_error("layer_grad_cam --layer conv9" + common, "conv9");
  expect_one_line_error("guided_grad_cam --layer fc9" + common, "fc9");
  expect_one_line_error("occlusion --sliding-window-shapes 3,40,8" + common, "[3, 40, 8]");
  expect_one_line_error("saliency --indices 10000" + common, "--indices");
  expect_one_line_error("saliency --indices 9990:10005" + common, "out of range");
  expect_one_line_error("saliency --indices 5:2" + common, "--indices");
  expect_one_line_error("saliency --model /nonexistent/model.safetensors --data " + data,
                        "/nonexistent/model.safetensors");
  expect_one_line_error("saliency --target 10" + common, "--target");
  expect_one_line_error("integrated_gradients --n-steps 0" + common, "--n-steps");
  expect_one_line_error("integrated_gradients --method simpson" + common, "simpson");
  expect_one_line_error("saliency --noise-tunnel smoothgrad_cubed" + common, "smoothgrad_cubed");
  expect_one_line_error("saliency --memory-budget 12Q" + common, "--memory-budget");
  expect_one_line_error("occlusion --strides 0,4,4" + common, "--strides");
  expect_one_line_error("deeplift_shap" + common, "deeplift_shap");
  expect_one_line_error("saliency --inputs /nonexistent/inputs.safetensors --model " + model,
                        "/nonexistent/inputs.safetensors");
  expect_one_line_error("saliency --model " + model + " --data /nonexistent/cifar",
                        "/nonexistent/cifar");
  expect_one_line_error("gradient_shap --draws " + model + common, "--draws");
  // Labels outside 0..9 and non-finite pixels in --inputs are named with their image.
  {
    const std::string dir = gradlens::testing::fresh_temp_dir("gradlens_bad_inputs");
    const SafetensorsFile pub = SafetensorsFile::load(
        gradlens::testing::shared_path("reference/public_inputs.safetensors"));
    std::vector<float> pixels = pub.tensor("inputs").to_vector();
    const gradlens::Shape shape = pub.tensor("inputs").shape();
    std::vector<std::int64_t> labels(static_cast<std::size_t>(shape[0]), 1);
    labels[2] = -1;
    gradlens::nn::SafetensorsWriter bad_label;
    bad_label.add("inputs", gradlens::Tensor::from_vector(pixels, shape));
    bad_label.add_int64("labels", labels, {shape[0]});
    bad_label.save(dir + "/label.safetensors");
    expect_one_line_error("saliency --inputs " + dir + "/label.safetensors --model " + model,
                          "label -1 of image 2");
    pixels[3 * 3072 + 5] = std::nanf("");
    gradlens::nn::SafetensorsWriter nan;
    nan.add("inputs", gradlens::Tensor::from_vector(pixels, shape));
    nan.save(dir + "/nan.safetensors");
    expect_one_line_error("saliency --inputs " + dir + "/nan.safetensors --model " + model,
                          "image 3 of");
  }
  // Options a method does not take are refused, not ignored.
  expect_one_line_error("saliency --n-steps 8" + common,
                        "--n-steps: [attribute] saliency takes no");
  expect_one_line_error("saliency --nt-samples 8" + common, "--nt-samples");
  expect_one_line_error("integrated_gradients --n-steps 4294967297" + common, "out of range");
}

// `gradlens methods` prints the library's registry: every method, every option with its flag.
TEST(AttributeCli, MethodsListsTheRegistry) {
  const gradlens::testing::CliRun text = gradlens::testing::run_gradlens("methods");
  const gradlens::testing::CliRun json = gradlens::testing::run_gradlens("methods --json");
  ASSERT_EQ(text.exit_code, 0) << text.err;
  ASSERT_EQ(json.exit_code, 0) << json.err;
  for (const gradlens::attr::MethodInfo& m : gradlens::attr::methods()) {
    EXPECT_NE(text.out.find(std::string(m.name) + " (Captum " + std::string(m.captum_class)),
              std::string::npos)
        << m.name;
    EXPECT_NE(json.out.find("\"name\": \"" + std::string(m.name) + "\""), std::string::npos);
  }
  EXPECT_NE(text.out.find("--n-steps"), std::string::npos) << text.out;
  EXPECT_NE(json.out.find("\"flag\": \"--nt-samples-batch-size\""), std::string::npos);
}

TEST(AttributeCli, UnknownFlagIsAnErrorNotACrash) {
  const gradlens::testing::CliRun r = run("saliency --no-such-flag");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no-such-flag"), std::string::npos) << r.err;
}

TEST(AttributeCli, FourShardJobsMergeIntoTheOneRunResult) {
  // NoiseTunnel over Saliency draws its noise per image from the image's own stream, so four
  // separate processes, each with its slice of the images and a shard of 4 at a time, then merged,
  // give what one run over all of them gives.
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const std::string data = fs::path(test_batch).parent_path().string();
  const fs::path dir = gradlens::testing::fresh_temp_dir("gradlens_shards");
  const std::string method =
      "saliency --noise-tunnel vargrad --nt-samples 3 --stdevs 0.2 "
      "--indices 0:24 --model " +
      model + " --data " + data;
  const std::string shards = (dir / "shards").string() + "/";
  for (int k = 0; k < 4; ++k) {
    const auto r = run(method + " --images-per-shard 4 --out " + shards + " --shard " +
                       std::to_string(k) + "/4");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("6/6 images"), std::string::npos) << r.err;  // progress on stderr
  }
  const std::string merged = (dir / "merged.safetensors").string();
  auto merge = [&] {
    return gradlens::testing::run_gradlens("shards merge " + shards + " --out " + merged);
  };
  ASSERT_EQ(merge().exit_code, 0);
  const std::string single = (dir / "single.safetensors").string();
  ASSERT_EQ(run(method + " --out " + single).exit_code, 0);
  const auto a = SafetensorsFile::load(merged), b = SafetensorsFile::load(single);
  EXPECT_EQ(a.shape("attributions"), b.shape("attributions"));
  EXPECT_TRUE(
      gradlens::testing::allclose(a.tensor("attributions"), b.tensor("attributions"), 0, 1e-6));
  EXPECT_EQ(a.int64s("targets"), b.int64s("targets"));
  std::vector<std::int64_t> expected_ids(24);
  for (int i = 0; i < 24; ++i) expected_ids[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(a.int64s("indices"), expected_ids);

  // A job run again without --resume refuses to overwrite; with another configuration, the
  // manifest refuses; a missing shard fails the merge, naming the images, until --resume redoes it.
  expect_one_line_error(method + " --images-per-shard 4 --out " + shards + " --shard 1/4",
                        "--resume");
  expect_one_line_error(
      "saliency --noise-tunnel vargrad --nt-samples 3 --stdevs 0.3 --indices 0:24 --model " +
          model + " --data " + data + " --images-per-shard 4 --resume --out " + shards,
      "manifest.json");
  fs::remove(fs::path(shards) / "shard-00000006-000004.safetensors");
  const auto broken = merge();
  EXPECT_NE(broken.exit_code, 0);
  EXPECT_NE(broken.err.find("images 6 7 8 9"), std::string::npos) << broken.err;
  const auto resumed =
      run(method + " --images-per-shard 4 --out " + shards + " --shard 1/4 --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("2 already written"), std::string::npos) << resumed.out;
  ASSERT_EQ(merge().exit_code, 0);
  EXPECT_TRUE(gradlens::testing::allclose(
      SafetensorsFile::load(merged).tensor("attributions"), b.tensor("attributions"), 0, 1e-6));
}

TEST(AttributeCli, ShardsComputedInOneCallAreTheShardsComputedAlone) {
  // On a GPU one call spans several shards (--images-per-call); each shard, NoiseTunnel's
  // per-sample delta rows included, must be the bytes a call of its own writes.
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const std::string data = fs::path(test_batch).parent_path().string();
  const fs::path dir = gradlens::testing::fresh_temp_dir("gradlens_calls");
  const std::string method =
      "integrated_gradients --n-steps 5 --delta --noise-tunnel smoothgrad --nt-samples 3 "
      "--stdevs 0.2 --indices 0:11 --images-per-shard 3 --model " +
      model + " --data " + data;
  const std::string alone = (dir / "alone").string() + "/",
                    together = (dir / "together").string() + "/";
  ASSERT_EQ(run(method + " --out " + alone).exit_code, 0);
  // Calls of 6 and 5 images: shards 0-2 and 3-5, then 6-8 and 9-10.
  const auto r = run(method + " --images-per-call 7 --out " + together);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("6/11 images"), std::string::npos) << r.err;
  const auto bytes = [](const fs::path& path) {
    return gradlens::data::read_regular_file(path.string(), std::size_t{1} << 20);
  };
  for (const char* shard : {"shard-00000000-000003.safetensors",
                            "shard-00000003-000003.safetensors",
                            "shard-00000006-000003.safetensors",
                            "shard-00000009-000002.safetensors"}) {
    ASSERT_TRUE(fs::exists(fs::path(together) / shard)) << shard;
    EXPECT_EQ(bytes(fs::path(together) / shard), bytes(fs::path(alone) / shard)) << shard;
  }
  EXPECT_EQ(
      SafetensorsFile::load((fs::path(together) / "shard-00000003-000003.safetensors").string())
          .shape("delta"),
      (gradlens::Shape{9}));  // 3 images x 3 samples
  expect_one_line_error(method + " --images-per-call -1 --out " + together, "--images-per-call");
}
