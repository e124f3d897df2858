// Shared by the CUDA suite: the skip with its reason where no GPU is visible, and the per-tensor
// tolerance check the CPU reference tests use (max |diff| relative to max |expected|).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "gradlens/autograd/shape.h"
#include "gradlens/autograd/tensor.h"
#include "gradlens/kernels/backend.h"

namespace gradlens::testing {

/// GRADLENS_CUDA_SUITE_ON_CPU=1 runs this suite with the CPU standing in for the GPU, so that the
/// suite itself (its plumbing, shapes and run time) can be checked on a machine without one.
inline bool suite_on_cpu() {
  const char* v = std::getenv("GRADLENS_CUDA_SUITE_ON_CPU");
  return v != nullptr && std::string(v) == "1";
}

/// GRADLENS_CUDA_SUITE_SMALL=1 leaves out the cases with more than ~150,000 elements (batches of
/// 10,000, reductions over millions), for slow stand-ins such as the CPU emulator of
/// tools/cuda_emu.
inline bool suite_small() {
  const char* v = std::getenv("GRADLENS_CUDA_SUITE_SMALL");
  return v != nullptr && std::string(v) == "1";
}
/// Whether a case whose largest array has `numel` elements runs.
inline bool suite_fits(std::int64_t numel) { return !suite_small() || numel <= 150000; }

/// The device under test: cuda:0, or the CPU in the self-check above.
inline Device gpu() { return suite_on_cpu() ? kCPU : kCUDA; }

/// Base fixture of every CUDA test: skips, naming the reason, when no GPU is visible.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (suite_on_cpu()) return;
    if (!cuda_is_available()) GTEST_SKIP() << "no CUDA device: " << cuda_unavailable_reason();
  }
};

/// max |actual - expected| <= rel * max |expected| over the whole tensor (the reference README's
/// "relative to max|ref| per tensor"), for tensors on any device.
inline ::testing::AssertionResult close_relative_to_max(const Tensor& actual,
                                                        const Tensor& expected,
                                                        double rel) {
  if (actual.shape() != expected.shape()) {
    return ::testing::AssertionFailure() << "shapes differ: " << shape_str(actual.shape()) << " vs "
                                         << shape_str(expected.shape());
  }
  const std::vector<float> a = actual.to_vector(), e = expected.to_vector();
  double max_ref = 0, max_diff = 0;
  std::size_t worst = 0, nans = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(e[i])));
    const double diff = std::fabs(static_cast<double>(a[i]) - e[i]);
    if (std::isnan(diff)) {
      if (nans++ == 0) worst = i;
    } else if (diff > max_diff && nans == 0) {
      max_diff = diff;
      worst = i;
    }
  }
  if (nans == 0 && max_diff <= rel * max_ref) return ::testing::AssertionSuccess();
  if (nans != 0) {
    return ::testing::AssertionFailure()
           << nans << " NaN differences, first at [" << worst << "] (" << a[worst] << " vs "
           << e[worst] << ") for shape " << shape_str(actual.shape());
  }
  return ::testing::AssertionFailure()
         << "max |diff| " << max_diff << " at [" << worst << "] (" << a[worst] << " vs " << e[worst]
         << ") > " << rel << " * max|ref| " << max_ref << " for shape "
         << shape_str(actual.shape());
}

}  // namespace gradlens::testing
