// The gradlens program as a user runs it: bad flags, missing data, wrong models and a missing GPU
// are one-line errors with a non-zero exit; eval and a short train work end to end.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kernels/backend.h"
#include "nn/safetensors.h"
#include "tests/testing.h"

namespace fs = std::filesystem;
using gradlens::testing::count_lines;
using gradlens::testing::fresh_temp_dir;
using gradlens::testing::run_gradlens;

TEST(Cli, UnknownFlagIsAnErrorNotACrash) {
  const gradlens::testing::CliRun r = run_gradlens("train --no-such-flag");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no-such-flag"), std::string::npos) << r.err;
}

TEST(Cli, MissingDataDirectoryIsOneLine) {
  const gradlens::testing::CliRun r = run_gradlens("train --data /nonexistent/cifar --epochs 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/cifar"), std::string::npos) << r.err;
}

TEST(Cli, BadNumbersAreRejected) {
  EXPECT_NE(run_gradlens("train --epochs 0").exit_code, 0);
  EXPECT_NE(run_gradlens("train --batch-size abc").exit_code, 0);
  const gradlens::testing::CliRun r = run_gradlens("eval --device tpu");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("tpu"), std::string::npos) << r.err;
}

TEST(Cli, ModelOfTheWrongShapeIsOneLine) {
  const fs::path dir = fresh_temp_dir("gradlens_cli");
  gradlens::nn::SafetensorsWriter w;
  w.add("conv1.weight", gradlens::Tensor::zeros({6, 3, 3, 3}));
  w.save((dir / "bad.safetensors").string());
  const gradlens::testing::CliRun r =
      run_gradlens("eval --model " + (dir / "bad.safetensors").string() + " --data /nonexistent");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("conv1.weight"), std::string::npos) << r.err;

  std::ofstream(dir / "truncated.safetensors", std::ios::binary) << "abc";
  const gradlens::testing::CliRun t =
      run_gradlens("eval --model " + (dir / "truncated.safetensors").string());
  EXPECT_NE(t.exit_code, 0);
  EXPECT_EQ(count_lines(t.err), 1) << t.err;
  EXPECT_NE(t.err.find("truncated.safetensors"), std::string::npos) << t.err;
  EXPECT_NE(run_gradlens("eval --model " + (dir / "missing.safetensors").string()).exit_code, 0);
}

TEST(Cli, MissingGpuIsOneLine) {
  if (gradlens::cuda_is_available()) GTEST_SKIP() << "a GPU is visible";
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  const gradlens::testing::CliRun r = run_gradlens("eval --device cuda --model " + model);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("cuda"), std::string::npos) << r.err;
}

TEST(Cli, EvalOfThePretrainedModelPrintsTheTutorialLines) {
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const std::string data = fs::path(test_batch).parent_path().string();
  const gradlens::testing::CliRun r = run_gradlens("eval --model " + model + " --data " + data);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("GroundTruth:  cat   ship  ship  plane"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Predicted:   "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("59.07 %"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Accuracy for class: plane is 46.9 %"), std::string::npos) << r.out;
}

TEST(Cli, ShortTrainingRunWritesAModelThatEvalReads) {
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const std::string data = fs::path(test_batch).parent_path().string();
  const fs::path dir = fresh_temp_dir("gradlens_cli");
  const std::string out = (dir / "model.safetensors").string();
  const gradlens::testing::CliRun r =
      run_gradlens("train --data " + data + " --epochs 1 --limit 400 --log-every 50 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[1,    50] loss: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("img/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Accuracy for class: truck"), std::string::npos) << r.out;
  ASSERT_TRUE(fs::exists(out));
  for (const auto& entry : fs::directory_iterator(dir)) {  // no temporary file left behind
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }
  const gradlens::testing::CliRun e = run_gradlens("eval --model " + out + " --data " + data);
  EXPECT_EQ(e.exit_code, 0) << e.err;
}
