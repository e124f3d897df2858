// The gradlens program as a user runs it: bad flags, missing data, wrong models and a missing GPU
// are one-line errors with a non-zero exit; eval and a short train work end to end.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gradlens/kernels/backend.h"
#include "gradlens/kernels/cpu/common/isa.h"
#include "gradlens/nn/safetensors.h"
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
  const gradlens::testing::CliRun threads = run_gradlens("eval --threads 100000");
  EXPECT_NE(threads.exit_code, 0);
  EXPECT_NE(threads.err.find("--threads must be 0 (every core) to"), std::string::npos)
      << threads.err;
  const gradlens::testing::CliRun r = run_gradlens("eval --device tpu");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("tpu"), std::string::npos) << r.err;
}

TEST(Cli, PrecisionIsFloat32OrTf32AndTf32AsksForCuda) {
  const gradlens::testing::CliRun bad = run_gradlens("eval --precision fp16");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_EQ(count_lines(bad.err), 1) << bad.err;
  EXPECT_NE(bad.err.find("fp16"), std::string::npos) << bad.err;
  const gradlens::testing::CliRun cpu = run_gradlens("eval --precision tf32 --device cpu");
  EXPECT_NE(cpu.exit_code, 0);
  EXPECT_EQ(count_lines(cpu.err), 1) << cpu.err;
  EXPECT_NE(cpu.err.find("--device cuda"), std::string::npos) << cpu.err;
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

// GRADLENS_CPU for the gradlens processes this test starts; restores the old value.
class CpuVariantEnv {
 public:
  explicit CpuVariantEnv(const char* value) {
    const char* old = std::getenv("GRADLENS_CPU");
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv("GRADLENS_CPU", value, 1);
  }
  ~CpuVariantEnv() {
    if (had_) {
      setenv("GRADLENS_CPU", old_.c_str(), 1);
    } else {
      unsetenv("GRADLENS_CPU");
    }
  }

 private:
  bool had_ = false;
  std::string old_;
};

TEST(Cli, VersionAndInfo) {
  const gradlens::testing::CliRun version = run_gradlens("--version");
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_EQ(version.out.rfind("gradlens 0.", 0), 0u) << version.out;
  const gradlens::testing::CliRun info = run_gradlens("info");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  for (const char* field : {"build:", "cpu:", "features:", "kernels:", "threads:", "cuda:"}) {
    EXPECT_NE(info.out.find(field), std::string::npos) << field << " missing:\n" << info.out;
  }
  const std::string chosen(gradlens::cpu::isa_name(gradlens::cpu::active_isa()));
  EXPECT_NE(info.out.find("kernels:  " + chosen), std::string::npos) << info.out;
}

TEST(Cli, UnknownOrUnsupportedCpuVariantIsOneLine) {
  {
    CpuVariantEnv env("sse9");
    const gradlens::testing::CliRun r = run_gradlens("info");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("GRADLENS_CPU=sse9: unknown variant"), std::string::npos) << r.err;
  }
  for (gradlens::cpu::Isa isa : gradlens::cpu::kAllIsas) {
    if (gradlens::cpu::isa_supported(isa)) continue;
    const std::string name(gradlens::cpu::isa_name(isa));
    CpuVariantEnv env(name.c_str());
    const gradlens::testing::CliRun r = run_gradlens("info");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("lacks " + gradlens::cpu::missing_features(isa)), std::string::npos)
        << r.err;
  }
}

TEST(Cli, EveryRunnableCpuVariantEvaluatesThePretrainedNetAlike) {
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(data, "cifar10/test_batch.bin");
  const std::string data_dir = fs::path(data).parent_path().string();
  // Correct predictions per variant: the variants round differently, so an image whose top two
  // logits tie to within float rounding may flip; more than 2 of 10,000 would be a bug.
  int first = -1;
  for (gradlens::cpu::Isa isa : gradlens::cpu::kAllIsas) {
    if (!gradlens::cpu::isa_supported(isa)) continue;
    const std::string name(gradlens::cpu::isa_name(isa));
    CpuVariantEnv env(name.c_str());
    const gradlens::testing::CliRun r =
        run_gradlens("eval --model " + model + " --data " + data_dir + " --batch-size 2000");
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.err;
    const auto at = r.out.find("% (");
    ASSERT_NE(at, std::string::npos) << r.out;
    const int correct = std::stoi(r.out.substr(at + 3));
    if (first < 0) first = correct;
    EXPECT_LE(std::abs(correct - first), 2) << name << ":\n" << r.out;
  }
}

// Training that cannot go well says so before the first step, or stops at the first non-finite
// loss; either way --out is left as it was.
TEST(Cli, TrainingRefusesBadSettingsAndStopsWhenItDiverges) {
  GRADLENS_SHARED_FILE(train_batch, "cifar10/data_batch_1.bin");
  const std::string data = fs::path(train_batch).parent_path().string();
  const fs::path dir = fresh_temp_dir("gradlens_train_bad");
  const std::string out = (dir / "model.safetensors").string();
  std::ofstream(out) << "the previous model";
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    const gradlens::testing::CliRun r = run_gradlens("train --data " + data + " " + args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_EQ(count_lines(r.err), 1) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\n" << r.err;
    std::ifstream in(out);
    std::string kept;
    std::getline(in, kept);
    EXPECT_EQ(kept, "the previous model") << args;
  };
  expect_error("--limit -5 --out " + out, "--limit must be >= 0");
  expect_error("--limit 8 --batch-size 9223372036854775807 --out " + out, "--batch-size");
  expect_error("--limit 8 --out /nonexistent/dir/model.safetensors", "/nonexistent/dir");
  expect_error("--limit 8 --out " + dir.string(), "not a regular file");
  expect_error("--limit 400 --lr 1e30 --out " + out, "training diverged: the loss is");
}
