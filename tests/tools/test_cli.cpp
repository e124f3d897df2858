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

namespace {

struct CliRun {
  int exit_code;
  std::string out, err;
};

fs::path temp_dir() {
  fs::path dir =
      fs::temp_directory_path() / ("gradlens_cli_" + std::to_string(getpid()) + "_" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

CliRun run(const std::string& args) {
  // One file per test process: ctest runs tests in parallel.
  const fs::path err_file =
      fs::temp_directory_path() / ("gradlens_cli_stderr_" + std::to_string(getpid()) + ".txt");
  const std::string cmd =
      std::string(GRADLENS_BINARY_DIR) + "/gradlens " + args + " 2>" + err_file.string();
  CliRun r{};
  FILE* pipe = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), pipe)) r.out += buf.data();
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_file);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  return r;
}

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

TEST(Cli, UnknownFlagIsAnErrorNotACrash) {
  const CliRun r = run("train --no-such-flag");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no-such-flag"), std::string::npos) << r.err;
}

TEST(Cli, MissingDataDirectoryIsOneLine) {
  const CliRun r = run("train --data /nonexistent/cifar --epochs 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/cifar"), std::string::npos) << r.err;
}

TEST(Cli, BadNumbersAreRejected) {
  EXPECT_NE(run("train --epochs 0").exit_code, 0);
  EXPECT_NE(run("train --batch-size abc").exit_code, 0);
  const CliRun r = run("eval --device tpu");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("tpu"), std::string::npos) << r.err;
}

TEST(Cli, ModelOfTheWrongShapeIsOneLine) {
  const fs::path dir = temp_dir();
  gradlens::nn::SafetensorsWriter w;
  w.add("conv1.weight", gradlens::Tensor::zeros({6, 3, 3, 3}));
  w.save((dir / "bad.safetensors").string());
  const CliRun r =
      run("eval --model " + (dir / "bad.safetensors").string() + " --data /nonexistent");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("conv1.weight"), std::string::npos) << r.err;

  std::ofstream(dir / "truncated.safetensors", std::ios::binary) << "abc";
  const CliRun t = run("eval --model " + (dir / "truncated.safetensors").string());
  EXPECT_NE(t.exit_code, 0);
  EXPECT_EQ(lines(t.err), 1) << t.err;
  EXPECT_NE(t.err.find("truncated.safetensors"), std::string::npos) << t.err;
  EXPECT_NE(run("eval --model " + (dir / "missing.safetensors").string()).exit_code, 0);
}

TEST(Cli, MissingGpuIsOneLine) {
  if (gradlens::cuda_is_available()) GTEST_SKIP() << "a GPU is visible";
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  const CliRun r = run("eval --device cuda --model " + model);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("cuda"), std::string::npos) << r.err;
}

TEST(Cli, EvalOfThePretrainedModelPrintsTheTutorialLines) {
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const std::string data = fs::path(test_batch).parent_path().string();
  const CliRun r = run("eval --model " + model + " --data " + data);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("GroundTruth:  cat   ship  ship  plane"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Predicted:   "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("59.07 %"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Accuracy for class: plane is 46.9 %"), std::string::npos) << r.out;
}

TEST(Cli, ShortTrainingRunWritesAModelThatEvalReads) {
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const std::string data = fs::path(test_batch).parent_path().string();
  const fs::path dir = temp_dir();
  const std::string out = (dir / "model.safetensors").string();
  const CliRun r =
      run("train --data " + data + " --epochs 1 --limit 400 --log-every 50 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[1,    50] loss: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("img/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Accuracy for class: truck"), std::string::npos) << r.out;
  ASSERT_TRUE(fs::exists(out));
  for (const auto& entry : fs::directory_iterator(dir)) {  // no temporary file left behind
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }
  const CliRun e = run("eval --model " + out + " --data " + data);
  EXPECT_EQ(e.exit_code, 0) << e.err;
}
