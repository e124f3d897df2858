// Test helpers: tolerance checks that print where tensors differ, gradcheck, and access to the
// reference files in ../shared (missing files fail under CI=..., skip otherwise).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gradlens/autograd/tensor.h"
#include "gradlens/kernels/backend.h"
#include "gradlens/kernels/params.h"

namespace gradlens::testing {

// RAII thread count for tests that compare thread counts.
class ThreadCount {
 public:
  explicit ThreadCount(int threads) : saved_(num_threads()) { set_num_threads(threads); }
  ~ThreadCount() { set_num_threads(saved_); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int saved_;
};

/// n uniform random floats in [lo, hi) from a fixed seed (std::mt19937), for kernel tests that
/// call a Backend directly.
std::vector<float> random_vector(std::int64_t n,
                                 std::uint32_t seed,
                                 float lo = -1.f,
                                 float hi = 1.f);

/// Uniform random tensor in [lo, hi) from a fixed seed.
Tensor random_tensor(const Shape& shape, std::uint64_t seed, float lo = -1.f, float hi = 1.f);

/// |a - b| <= atol + rtol * |b| everywhere; on failure, prints the shapes, the first mismatches and
/// the largest difference.
::testing::AssertionResult allclose(const std::vector<float>& actual,
                                    const std::vector<float>& expected,
                                    double rtol,
                                    double atol);
::testing::AssertionResult allclose(const Tensor& actual,
                                    const Tensor& expected,
                                    double rtol,
                                    double atol);

/// Central-difference check of every input's gradient of L = sum(r * f(inputs)) with a fixed random
/// r (a plain sum hides errors: the gradient of sum(softmax) is 0). Float32, eps 1e-2, L in double,
/// at most `max_coords` sampled coordinates per input.
::testing::AssertionResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                     std::vector<Tensor> inputs,
                                     double eps = 1e-2,
                                     double tol = 1e-2,
                                     int max_coords = 64);

/// The built gradlens program run with `args`: exit code, stdout and stderr.
struct CliRun {
  int exit_code = -1;
  std::string out, err;
};
CliRun run_gradlens(const std::string& args);
/// The path of the built gradlens program.
std::string gradlens_program();
/// Lines in s (its newline count).
int count_lines(const std::string& s);
/// A fresh empty directory under the system temp dir, unique to this process and test.
std::string fresh_temp_dir(const std::string& prefix);

/// ../shared/<relative>, or "" after GTEST_SKIP/FAIL when it is missing (fail when CI is set).
std::string shared_path(const std::string& relative);
bool running_in_ci();

/// BroadcastParams for a op b as autograd/ops/elementwise.cpp builds them (trailing dims aligned,
/// stride 0 on size-1 dims), for kernel tests that call a Backend directly.
BroadcastParams make_broadcast(std::vector<std::int64_t> a, std::vector<std::int64_t> b);

/// The CPU kernels' ISA variants the tests run: generic, avx2, avx512 (those this build holds), and
/// avx512_on_avx2, the AVX-512 variant's code with each 512-bit vector as two AVX2 halves (built
/// for the tests only), so its tiling, masks and tails run on machines without AVX-512.
std::vector<std::string> cpu_variant_names();
/// The variant's backend, or nullptr with `why` set when this build or machine cannot run it.
Backend* cpu_variant(const std::string& name, std::string* why);

/// The message of the std::invalid_argument `fn` throws; an empty string (and a test failure) when
/// it throws none.
std::string invalid_argument_message(const std::function<void()>& fn);

}  // namespace gradlens::testing

/// Use at the top of a test: resolves a ../shared file or skips (fails under CI).
#define GRADLENS_SHARED_FILE(var, relative)                                            \
  const std::string var = ::gradlens::testing::shared_path(relative);                  \
  if (var.empty()) {                                                                   \
    if (::gradlens::testing::running_in_ci()) FAIL() << "missing ../shared/" relative; \
    GTEST_SKIP() << "missing ../shared/" relative;                                     \
  }
