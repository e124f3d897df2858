// `--device` on the command line where no GPU is visible (every CI machine): training on cuda is a
// one-line error before any step or file is written, and unknown devices are refused before the
// data is read. tests/cuda/test_cuda_net.cpp runs the same commands where a GPU is visible.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gradlens/kernels/backend.h"
#include "tests/testing.h"

namespace fs = std::filesystem;
using gradlens::testing::count_lines;
using gradlens::testing::fresh_temp_dir;
using gradlens::testing::run_gradlens;

TEST(DeviceCli, TrainOnCudaWithoutAGpuIsOneLine) {
  if (gradlens::cuda_is_available()) GTEST_SKIP() << "a GPU is visible (tests/cuda trains on it)";
  // Real data, so that the device is what fails: the data is loaded before the model moves.
  GRADLENS_SHARED_FILE(train_batch, "cifar10/data_batch_1.bin");
  const std::string data = fs::path(train_batch).parent_path().string();
  const fs::path dir = fresh_temp_dir("gradlens_device_cli");
  const std::string out = (dir / "model.safetensors").string();
  const gradlens::testing::CliRun r =
      run_gradlens("train --device cuda --data " + data + " --epochs 1 --limit 8 --out " + out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("gradlens: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("cuda"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("loss"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out));
}

TEST(DeviceCli, UnknownDevicesAreRefusedBeforeTheDataIsRead) {
  for (const std::string device : {"tpu", "cuda:abc", "cuda:", "CUDA"}) {
    const gradlens::testing::CliRun r =
        run_gradlens("train --device " + device + " --data /nonexistent/cifar --epochs 1");
    EXPECT_NE(r.exit_code, 0) << device;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("'" + device + "'"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("/nonexistent/cifar"), std::string::npos) << r.err;
  }
}

#if GRADLENS_WITH_CUDA
// A CUDA-enabled build opens its kernels (libgradlens_cuda.so) only when a GPU is asked for: where
// the plugin is missing or broken, CPU work runs and cuda is a one-line error naming the file.
TEST(DeviceCli, CudaWithoutItsPluginIsOneLineNamingIt) {
  GRADLENS_SHARED_FILE(train_batch, "cifar10/data_batch_1.bin");
  const std::string data = fs::path(train_batch).parent_path().string();
  const fs::path dir = fresh_temp_dir("gradlens_cuda_plugin");
  const fs::path not_a_library = dir / "libgradlens_cuda.so";
  std::ofstream(not_a_library) << "not an ELF file\n";
  const std::string out = (dir / "model.safetensors").string();
  for (const std::string& plugin : {(dir / "missing.so").string(), not_a_library.string()}) {
    ::setenv("GRADLENS_CUDA_BACKEND", plugin.c_str(), 1);
    const gradlens::testing::CliRun info = run_gradlens("info");
    const gradlens::testing::CliRun cpu =
        run_gradlens("train --device cpu --data " + data + " --epochs 1 --limit 8 --out " + out);
    const gradlens::testing::CliRun cuda =
        run_gradlens("train --device cuda --data " + data + " --epochs 1 --limit 8 --out " + out);
    ::unsetenv("GRADLENS_CUDA_BACKEND");
    EXPECT_EQ(info.exit_code, 0) << info.err;
    EXPECT_NE(info.out.find("libgradlens_cuda.so could not be loaded"), std::string::npos)
        << info.out;
    EXPECT_EQ(cpu.exit_code, 0) << cpu.err;
    EXPECT_NE(cuda.exit_code, 0);
    EXPECT_EQ(count_lines(cuda.err), 1) << cuda.err;
    EXPECT_NE(cuda.err.find("could not be loaded"), std::string::npos) << cuda.err;
    EXPECT_NE(cuda.err.find(plugin), std::string::npos) << cuda.err;
  }
}
#endif
