#include "tests/testing.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "gradlens/autograd/engine.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/kernels/cpu/common/isa.h"

#if GRADLENS_TEST_AVX512_ON_AVX2
extern "C" gradlens::Backend* gradlens_cpu_backend_avx512_on_avx2();
#endif

namespace gradlens::testing {

namespace {

// The build's paths, or the environment's where it sets them: a bundle (tools/gpu_bundle.sh) runs
// these binaries far from the tree they were built in.
std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

}  // namespace

std::vector<float> random_vector(std::int64_t n, std::uint32_t seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = dist(gen);
  return v;
}

Tensor random_tensor(const Shape& shape, std::uint64_t seed, float lo, float hi) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> values(static_cast<std::size_t>(shape_numel(shape)));
  for (float& v : values) v = dist(gen);
  return Tensor::from_vector(values, shape);
}

::testing::AssertionResult allclose(const std::vector<float>& actual,
                                    const std::vector<float>& expected,
                                    double rtol,
                                    double atol) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure()
           << "sizes differ: " << actual.size() << " vs " << expected.size();
  }
  std::ostringstream first;
  std::size_t bad = 0, worst_at = 0;
  double worst = 0.0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double a = actual[i], e = expected[i];
    const double diff = std::fabs(a - e);
    const bool ok = diff <= atol + rtol * std::fabs(e) || (std::isnan(a) && std::isnan(e));
    if (!(diff <= worst) && !std::isnan(diff)) {
      worst = diff;
      worst_at = i;
    }
    if (!ok) {
      if (bad < 5) first << "\n  [" << i << "] actual " << a << " expected " << e;
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << actual.size() << " elements differ (rtol " << rtol << ", atol " << atol
         << "); largest |diff| " << worst << " at " << worst_at << first.str();
}

::testing::AssertionResult allclose(const Tensor& actual,
                                    const Tensor& expected,
                                    double rtol,
                                    double atol) {
  if (actual.shape() != expected.shape()) {
    return ::testing::AssertionFailure() << "shapes differ: " << shape_str(actual.shape()) << " vs "
                                         << shape_str(expected.shape());
  }
  auto result = allclose(actual.to_vector(), expected.to_vector(), rtol, atol);
  if (!result) result << "\n  shape " << shape_str(actual.shape());
  return result;
}

::testing::AssertionResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                     std::vector<Tensor> inputs,
                                     double eps,
                                     double tol,
                                     int max_coords) {
  for (auto& x : inputs) x = x.clone().set_requires_grad(true);
  const Tensor out = f(inputs);
  const Tensor r = random_tensor(out.shape(), 1234, -1.f, 1.f);
  const Tensor loss = sum(mul(out, r));
  const std::vector<Tensor> analytic = grad({loss}, inputs);

  auto loss_at = [&](const std::vector<Tensor>& xs) {
    NoGradGuard no_grad;
    const auto y = f(xs).to_vector();
    const auto w = r.to_vector();
    double acc = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) acc += static_cast<double>(y[i]) * w[i];
    return acc;
  };

  std::mt19937_64 pick(99);
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    const auto a = analytic[k].to_vector();
    const std::int64_t n = inputs[k].numel();
    std::vector<std::int64_t> coords(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) coords[static_cast<std::size_t>(i)] = i;
    std::shuffle(coords.begin(), coords.end(), pick);
    if (static_cast<std::int64_t>(coords.size()) > max_coords)
      coords.resize(static_cast<std::size_t>(max_coords));
    for (std::int64_t c : coords) {
      std::vector<Tensor> plus, minus;
      for (std::size_t j = 0; j < inputs.size(); ++j) {
        plus.push_back(inputs[j].detach().clone());
        minus.push_back(inputs[j].detach().clone());
      }
      auto bump = [&](Tensor& t, double delta) {
        auto v = t.to_vector();
        v[static_cast<std::size_t>(c)] += static_cast<float>(delta);
        t = Tensor::from_vector(v, t.shape(), t.device());
      };
      bump(plus[k], eps);
      bump(minus[k], -eps);
      const double numeric = (loss_at(plus) - loss_at(minus)) / (2 * eps);
      const double got = a[static_cast<std::size_t>(c)];
      if (std::fabs(numeric - got) > tol + tol * std::fabs(numeric)) {
        return ::testing::AssertionFailure()
               << "input " << k << " " << shape_str(inputs[k].shape()) << " element " << c
               << ": analytic " << got << ", numeric " << numeric;
      }
    }
  }
  return ::testing::AssertionSuccess();
}

std::string gradlens_program() {
  return env_or("GRADLENS_BINARY_DIR", GRADLENS_BINARY_DIR) + "/gradlens";
}

CliRun run_gradlens(const std::string& args) {
  // One stderr file per test process: ctest runs tests in parallel.
  const std::filesystem::path err_file =
      std::filesystem::temp_directory_path() /
      ("gradlens_cli_stderr_" + std::to_string(getpid()) + ".txt");
  const std::string cmd = gradlens_program() + " " + args + " 2>" + err_file.string();
  CliRun r;
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

int count_lines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

std::string fresh_temp_dir(const std::string& prefix) {
  const auto dir = std::filesystem::temp_directory_path() /
                   (prefix + "_" + std::to_string(getpid()) + "_" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci && *ci && std::string(ci) != "0" && std::string(ci) != "false";
}

std::string shared_path(const std::string& relative) {
  const std::filesystem::path path =
      std::filesystem::path(env_or("GRADLENS_SHARED_DIR", GRADLENS_SHARED_DIR)) / relative;
  return std::filesystem::exists(path) ? path.string() : std::string();
}

BroadcastParams make_broadcast(std::vector<std::int64_t> a, std::vector<std::int64_t> b) {
  const auto numel_of = [](const std::vector<std::int64_t>& shape) {
    std::int64_t n = 1;
    for (std::int64_t s : shape) n *= s;
    return n;
  };
  BroadcastParams p;
  p.a_numel = numel_of(a);
  p.b_numel = numel_of(b);
  const std::size_t ndim = std::max(a.size(), b.size());
  a.insert(a.begin(), ndim - a.size(), 1);
  b.insert(b.begin(), ndim - b.size(), 1);
  p.ndim = static_cast<int>(ndim);
  p.numel = 1;
  std::int64_t stride_a = 1, stride_b = 1;
  for (std::size_t d = ndim; d-- > 0;) {
    p.shape[d] = std::max(a[d], b[d]);
    p.a_strides[d] = a[d] == 1 ? 0 : stride_a;
    p.b_strides[d] = b[d] == 1 ? 0 : stride_b;
    stride_a *= a[d];
    stride_b *= b[d];
    p.numel *= p.shape[d];
  }
  return p;
}

std::vector<std::string> cpu_variant_names() {
  return {"generic", "avx2", "avx512", "avx512_on_avx2"};
}

Backend* cpu_variant(const std::string& name, std::string* why) {
  for (cpu::Isa isa : cpu::kAllIsas) {
    if (cpu::isa_name(isa) != name) continue;
    if (!cpu::isa_compiled(isa)) {
      *why = "this build has no " + name + " variant";
      return nullptr;
    }
    if (!cpu::isa_supported(isa)) {
      *why = "this CPU lacks " + cpu::missing_features(isa);
      return nullptr;
    }
    return &cpu::isa_backend(isa);
  }
  if (name == "avx512_on_avx2") {
#if GRADLENS_TEST_AVX512_ON_AVX2
    if (!cpu::isa_supported(cpu::Isa::avx2)) {
      *why = "this CPU lacks " + cpu::missing_features(cpu::Isa::avx2);
      return nullptr;
    }
    return gradlens_cpu_backend_avx512_on_avx2();
#else
    *why = "this build has no avx512_on_avx2 variant";
    return nullptr;
#endif
  }
  *why = "unknown variant " + name;
  return nullptr;
}

std::string invalid_argument_message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "no std::invalid_argument was thrown";
  return "";
}

}  // namespace gradlens::testing
