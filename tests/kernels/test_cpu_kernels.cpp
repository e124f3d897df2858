// CpuBackend against naive double-precision references written here, on random data and odd shapes
// (batch 1, stride 2, padding, non-square, ties, exact zeros, broadcasting, SGD variants). The
// suite runs once per ISA variant of the CPU kernels that this machine can run
// (CpuKernels/<variant>).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gradlens/kernels/backend.h"
#include "tests/testing.h"

namespace {

using gradlens::Backend;
using gradlens::BinaryOp;
using gradlens::BroadcastParams;
using gradlens::Conv2dParams;
using gradlens::i64;
using gradlens::Pool2dParams;
using gradlens::SgdParams;

// The variant under test, set by the fixture.
Backend* variant_under_test = nullptr;
Backend& cpu() { return *variant_under_test; }

class CpuKernels : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string why;
    variant_under_test = gradlens::testing::cpu_variant(GetParam(), &why);
    if (variant_under_test == nullptr) GTEST_SKIP() << GetParam() << ": " << why;
  }
};

INSTANTIATE_TEST_SUITE_P(Variants,
                         CpuKernels,
                         ::testing::ValuesIn(gradlens::testing::cpu_variant_names()),
                         [](const auto& info) { return info.param; });

using gradlens::testing::random_vector;

// |actual - expected| <= rtol * |expected| + atol * max(1, max |expected|), reporting the worst.
::testing::AssertionResult close(const std::vector<float>& actual,
                                 const std::vector<double>& expected,
                                 double rtol = 1e-4,
                                 double atol = 1e-5) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure()
           << "size " << actual.size() << " != expected " << expected.size();
  }
  double scale = 1.0;
  for (double e : expected) scale = std::max(scale, std::abs(e));
  std::size_t bad = 0, worst = 0;
  double worst_excess = 0.0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double diff = std::abs(static_cast<double>(actual[i]) - expected[i]);
    const double allowed = rtol * std::abs(expected[i]) + atol * scale;
    if (!(diff <= allowed)) {
      if (bad == 0 || diff - allowed > worst_excess) {
        worst = i;
        worst_excess = diff - allowed;
      }
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << actual.size() << " differ; worst at [" << worst
         << "]: " << actual[worst] << " vs " << expected[worst];
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

using gradlens::testing::ThreadCount;

// ---------------------------------------------------------------------------------------------
// Memory and simple elementwise kernels

TEST_P(CpuKernels, AllocateIsAlignedAndCopies) {
  Backend& be = cpu();
  EXPECT_TRUE(be.device().is_cpu());
  for (std::size_t bytes : {std::size_t{0}, std::size_t{1}, std::size_t{100}, std::size_t{4096}}) {
    void* ptr = be.allocate(bytes);
    ASSERT_NE(ptr, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(ptr) % 64, 0u);
    be.deallocate(ptr);
  }
  const std::vector<float> src = random_vector(37, 1);
  float* a = static_cast<float*>(be.allocate(37 * sizeof(float)));
  float* b = static_cast<float*>(be.allocate(37 * sizeof(float)));
  be.copy_from_host(a, src.data(), 37 * sizeof(float));
  be.copy(b, a, 37 * sizeof(float));
  std::vector<float> back(37);
  be.copy_to_host(back.data(), b, 37 * sizeof(float));
  be.synchronize();
  EXPECT_EQ(back, src);
  be.deallocate(a);
  be.deallocate(b);
}

TEST_P(CpuKernels, FillAndAffine) {
  for (i64 n : {i64{0}, i64{1}, i64{13}, i64{200001}}) {
    std::vector<float> y(static_cast<std::size_t>(n), -7.f);
    cpu().fill(y.data(), 2.5f, n);
    EXPECT_TRUE(std::all_of(y.begin(), y.end(), [](float v) { return v == 2.5f; }));
    const std::vector<float> x = random_vector(n, 2);
    cpu().affine(x.data(), -1.5f, 0.25f, y.data(), n);
    std::vector<double> ref(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) ref[i] = -1.5 * x[i] + 0.25;
    EXPECT_TRUE(close(y, ref, 1e-6, 1e-7)) << "n = " << n;
    // alpha == 1 and beta == 0 are exact: x + beta and alpha * x
    cpu().affine(x.data(), 1.f, 0.3f, y.data(), n);
    for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], x[i] + 0.3f);
    cpu().affine(x.data(), -2.f, 0.f, y.data(), n);
    for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], -2.f * x[i]);
  }
}

TEST_P(CpuKernels, ReluIsZeroAtZeroAndPropagatesNan) {
  std::vector<float> x = random_vector(1000, 3);
  for (std::size_t i = 0; i < x.size(); i += 7) x[i] = 0.f;
  x[1] = -0.f;
  x[2] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> dy = random_vector(1000, 4);
  std::vector<float> y(1000), dx(1000);
  cpu().relu_forward(x.data(), y.data(), 1000);
  cpu().relu_backward(x.data(), dy.data(), dx.data(), 1000);
  EXPECT_TRUE(std::isnan(y[2]));
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (i == 2) continue;
    EXPECT_EQ(y[i], x[i] > 0.f ? x[i] : 0.f) << i;
    EXPECT_EQ(dx[i], x[i] > 0.f ? dy[i] : 0.f) << i;  // exactly 0 at x == 0
  }
  EXPECT_EQ(dx[0], 0.f);
  EXPECT_EQ(dx[2], 0.f);
  // large enough to be split over threads
  const i64 n = 300001;
  const std::vector<float> big = random_vector(n, 5);
  std::vector<float> big_y(static_cast<std::size_t>(n));
  cpu().relu_forward(big.data(), big_y.data(), n);
  for (i64 i = 0; i < n; ++i) ASSERT_EQ(big_y[i], std::max(big[i], 0.f));
}

TEST_P(CpuKernels, SumAccumulatesInDouble) {
  for (i64 n : {i64{0}, i64{1}, i64{7}, i64{1000}, i64{65536}, i64{300007}}) {
    const std::vector<float> x = random_vector(n, 6, 0.f, 1.f);
    double ref = 0.0;
    for (float v : x) ref += v;
    float y = -1.f;
    cpu().sum(x.data(), n, &y);
    EXPECT_NEAR(y, ref, 1e-6 * std::max(1.0, std::abs(ref))) << "n = " << n;
  }
  // 1 + many tiny values: a float accumulator would lose them
  std::vector<float> x(1 << 20, 1e-8f);
  x[0] = 1.f;
  float y = 0.f;
  cpu().sum(x.data(), static_cast<i64>(x.size()), &y);
  EXPECT_FLOAT_EQ(y, static_cast<float>(1.0 + 1e-8 * ((1 << 20) - 1)));
}

// ---------------------------------------------------------------------------------------------
// Broadcasting binary ops

using gradlens::testing::make_broadcast;

// Offsets of output element i into a and b.
std::pair<i64, i64> operand_index(const BroadcastParams& p, i64 i) {
  i64 ia = 0, ib = 0;
  for (int d = p.ndim - 1; d >= 0; --d) {
    const i64 idx = i % p.shape[d];
    i /= p.shape[d];
    ia += idx * p.a_strides[d];
    ib += idx * p.b_strides[d];
  }
  return {ia, ib};
}

struct BroadcastCase {
  std::vector<i64> a, b;
};

TEST_P(CpuKernels, BinaryOpsBroadcastForwardAndBackward) {
  const std::vector<BroadcastCase> cases = {
      {{4, 3, 5, 6}, {4, 3, 5, 6}},       // no broadcast (fast path)
      {{4, 3, 5, 6}, {3, 5, 6}},          // [N,C,H,W] op [C,H,W]
      {{4, 3, 5, 6}, {4, 1, 1, 1}},       // per-sample scalar
      {{4, 3, 5, 6}, {}},                 // scalar
      {{}, {2, 3}},                       // scalar on the left
      {{3, 1, 1}, {2, 3, 4, 5}},          // per-channel, a broadcast
      {{2, 1, 7}, {1, 3, 1}},             // both broadcast
      {{1}, {1}},                         // one element
      {{5, 1}, {1, 6}},                   // outer product
      {{64, 3, 32, 32}, {3, 32, 32}},     // large: split over threads
      {{2, 3, 4, 5, 6}, {2, 1, 4, 1, 6}}  // interleaved broadcast dims
  };
  for (const BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul}) {
    for (const auto& c : cases) {
      const BroadcastParams p = make_broadcast(c.a, c.b);
      const std::vector<float> a = random_vector(p.a_numel, 10), b = random_vector(p.b_numel, 11);
      const std::vector<float> dy = random_vector(p.numel, 12);
      std::vector<float> y(static_cast<std::size_t>(p.numel));
      std::vector<float> da(static_cast<std::size_t>(p.a_numel), 99.f);
      std::vector<float> db(static_cast<std::size_t>(p.b_numel), 99.f);
      cpu().binary_forward(op, p, a.data(), b.data(), y.data());
      cpu().binary_backward(op, p, a.data(), b.data(), dy.data(), da.data(), db.data());
      std::vector<double> y_ref(y.size()), da_ref(da.size(), 0.0), db_ref(db.size(), 0.0);
      for (i64 i = 0; i < p.numel; ++i) {
        const auto [ia, ib] = operand_index(p, i);
        const double av = a[ia], bv = b[ib], g = dy[i];
        switch (op) {
          case BinaryOp::Add:
            y_ref[i] = av + bv;
            da_ref[ia] += g;
            db_ref[ib] += g;
            break;
          case BinaryOp::Sub:
            y_ref[i] = av - bv;
            da_ref[ia] += g;
            db_ref[ib] -= g;
            break;
          case BinaryOp::Mul:
            y_ref[i] = av * bv;
            da_ref[ia] += g * bv;
            db_ref[ib] += g * av;
            break;
          case BinaryOp::Div:  // not in the list: div's backward is composed at the op level
            break;
        }
      }
      const std::string what = "op " + std::to_string(static_cast<int>(op)) + " case a " +
                               std::to_string(p.a_numel) + " b " + std::to_string(p.b_numel);
      EXPECT_TRUE(close(y, y_ref, 1e-6, 1e-7)) << what;
      EXPECT_TRUE(close(da, da_ref)) << what;
      EXPECT_TRUE(close(db, db_ref)) << what;
      // either gradient may be skipped
      std::vector<float> db_only(db.size(), 5.f);
      cpu().binary_backward(op, p, a.data(), b.data(), dy.data(), nullptr, db_only.data());
      EXPECT_EQ(db_only, db) << what;
    }
  }
}

TEST_P(CpuKernels, BinaryForwardInPlace) {
  const BroadcastParams p = make_broadcast({4, 3, 8}, {3, 8});
  std::vector<float> a = random_vector(p.a_numel, 13);
  const std::vector<float> b = random_vector(p.b_numel, 14), a0 = a;
  cpu().binary_forward(BinaryOp::Mul, p, a.data(), b.data(), a.data());
  for (i64 i = 0; i < p.numel; ++i) ASSERT_EQ(a[i], a0[i] * b[i % 24]);
}

TEST_P(CpuKernels, DivForwardBroadcasts) {
  for (const auto& [sa, sb] : {std::pair<std::vector<i64>, std::vector<i64>>{{4, 3, 5}, {4, 3, 5}},
                               {{4, 3, 5}, {3, 5}},
                               {{4, 3, 5}, {4, 1, 1}},
                               {{2, 3}, {}}}) {
    const BroadcastParams p = make_broadcast(sa, sb);
    const std::vector<float> a = random_vector(p.a_numel, 15);
    const std::vector<float> b = random_vector(p.b_numel, 16, 0.5f, 2.f);
    std::vector<float> y(static_cast<std::size_t>(p.numel));
    cpu().binary_forward(BinaryOp::Div, p, a.data(), b.data(), y.data());
    for (i64 i = 0; i < p.numel; ++i) {
      const auto [ia, ib] = operand_index(p, i);
      ASSERT_EQ(y[i], a[ia] / b[ib]) << i;  // one IEEE division: exact
    }
  }
}

TEST_P(CpuKernels, UnaryOpsAndSafeDiv) {
  std::vector<float> x = random_vector(1001, 17, -4.f, 4.f);
  x[0] = 0.f;
  x[1] = -0.f;
  x[2] = 2.f;
  const float param = 0.25f;
  std::vector<float> y(x.size());
  using gradlens::UnaryOp;
  for (const UnaryOp op : gradlens::kAllUnaryOps) {
    std::vector<float> in = x;
    if (op == UnaryOp::Sqrt || op == UnaryOp::Log) {
      for (float& v : in) v = std::abs(v);
    }
    cpu().unary_forward(op, in.data(), y.data(), static_cast<i64>(in.size()), param);
    for (std::size_t i = 0; i < in.size(); ++i) {
      const float v = in[i];
      float ref = 0.f;
      switch (op) {
        case UnaryOp::Abs:
          ref = std::abs(v);
          break;
        case UnaryOp::Square:
          ref = v * v;
          break;
        case UnaryOp::Sqrt:
          ref = std::sqrt(v);
          break;
        case UnaryOp::Sign:
          ref = v > 0.f ? 1.f : v < 0.f ? -1.f : 0.f;  // 0 at 0, like torch.sign
          break;
        case UnaryOp::Step:
          ref = v > 0.f ? 1.f : 0.f;
          break;
        case UnaryOp::Stabilize:
          ref = v + (v >= 0.f ? param : -param);
          break;
        case UnaryOp::Exp:
          ref = std::exp(v);
          break;
        case UnaryOp::Log:
          ref = std::log(v);
          break;
        case UnaryOp::Tanh:
          ref = std::tanh(v);
          break;
        case UnaryOp::Sigmoid:
          ref = 1.f / (1.f + std::exp(-v));
          break;
        case UnaryOp::LeakyRelu:
          ref = v > 0.f ? v : v * param;
          break;
        case UnaryOp::ClampMin:
          ref = std::max(v, param);
          break;
        case UnaryOp::ClampMax:
          ref = std::min(v, param);
          break;
      }
      // The transcendental ones within 2 ulp of the C library's (a vectorised libm may differ).
      if (y[i] == ref || (std::isnan(y[i]) && std::isnan(ref))) continue;
      const float ulp = std::abs(std::nextafter(ref, INFINITY) - ref);
      ASSERT_NEAR(y[i], ref, 2 * ulp) << "op " << static_cast<int>(op) << " x = " << v;
    }
  }

  const i64 n = 100;
  const std::vector<float> num = random_vector(n, 18), fallback = random_vector(n, 19);
  std::vector<float> den = random_vector(n, 20);
  den[0] = 0.f;
  den[1] = 1e-3f;  // below eps: fallback
  den[2] = -0.5f;
  const float eps = 1e-2f;
  std::vector<float> q(static_cast<std::size_t>(n));
  cpu().safe_div(num.data(), den.data(), fallback.data(), eps, q.data(), n);
  for (i64 i = 0; i < n; ++i) {
    ASSERT_EQ(q[i], std::abs(den[i]) >= eps ? num[i] / den[i] : fallback[i]) << i;
  }
}

TEST_P(CpuKernels, SumDimAccumulatesInDouble) {
  struct Case {
    i64 outer, size, inner;
  };
  for (const Case c : {Case{1, 1, 1},
                       Case{3, 7, 1},
                       Case{2, 5, 9},
                       Case{4, 10, 3072},
                       Case{1000, 10, 1},
                       Case{1, 100003, 1},
                       Case{5, 1, 6},
                       Case{1, 50, 9216},    // IG's sum over steps: column blocks, one outer row
                       Case{3, 4, 2049}}) {  // a partial column block
    const std::vector<float> x = random_vector(c.outer * c.size * c.inner, 21);
    std::vector<float> y(static_cast<std::size_t>(c.outer * c.inner), 9.f);
    {
      ThreadCount one(1);
      cpu().sum_dim(x.data(), c.outer, c.size, c.inner, y.data());
    }
    std::vector<float> two_threads(y.size(), 7.f);
    cpu().sum_dim(x.data(), c.outer, c.size, c.inner, two_threads.data());
    EXPECT_EQ(y, two_threads) << "thread count changed " << c.outer << " x " << c.size << " x "
                              << c.inner;
    std::vector<double> ref(y.size(), 0.0);
    for (i64 o = 0; o < c.outer; ++o) {
      for (i64 d = 0; d < c.size; ++d) {
        for (i64 i = 0; i < c.inner; ++i) {
          ref[o * c.inner + i] += x[(o * c.size + d) * c.inner + i];
        }
      }
    }
    EXPECT_TRUE(close(y, ref, 1e-6, 1e-7)) << c.outer << " x " << c.size << " x " << c.inner;
  }
}

// ---------------------------------------------------------------------------------------------
// linear

TEST_P(CpuKernels, LinearMatchesReference) {
  struct Case {
    i64 n, in, out;
  };
  for (const Case c : {Case{1, 5, 3},
                       Case{4, 400, 120},
                       Case{67, 33, 17},
                       Case{300, 120, 84},
                       Case{64, 100, 2000}}) {
    const std::vector<float> x = random_vector(c.n * c.in, 20), w = random_vector(c.out * c.in, 21);
    const std::vector<float> b = random_vector(c.out, 22), dy = random_vector(c.n * c.out, 23);
    std::vector<float> y(static_cast<std::size_t>(c.n * c.out), 9.f);
    std::vector<float> dx(x.size(), 9.f), dw(w.size(), 9.f), db(b.size(), 9.f);
    cpu().linear_forward(x.data(), w.data(), b.data(), y.data(), c.n, c.in, c.out);
    cpu().linear_backward(
        x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data(), c.n, c.in, c.out);
    std::vector<double> y_ref(y.size()), dx_ref(dx.size(), 0.0), dw_ref(dw.size(), 0.0),
        db_ref(db.size(), 0.0);
    for (i64 i = 0; i < c.n; ++i) {
      for (i64 o = 0; o < c.out; ++o) {
        double acc = b[o];
        for (i64 j = 0; j < c.in; ++j) {
          acc += static_cast<double>(x[i * c.in + j]) * w[o * c.in + j];
          dx_ref[i * c.in + j] += static_cast<double>(dy[i * c.out + o]) * w[o * c.in + j];
          dw_ref[o * c.in + j] += static_cast<double>(dy[i * c.out + o]) * x[i * c.in + j];
        }
        y_ref[i * c.out + o] = acc;
        db_ref[o] += dy[i * c.out + o];
      }
    }
    const std::string what = "n " + std::to_string(c.n) + " in " + std::to_string(c.in);
    EXPECT_TRUE(close(y, y_ref)) << what;
    EXPECT_TRUE(close(dx, dx_ref)) << what;
    EXPECT_TRUE(close(dw, dw_ref)) << what;
    EXPECT_TRUE(close(db, db_ref)) << what;

    // no bias; only dw requested
    cpu().linear_forward(x.data(), w.data(), nullptr, y.data(), c.n, c.in, c.out);
    for (i64 i = 0; i < c.n; ++i) {
      for (i64 o = 0; o < c.out; ++o) y_ref[i * c.out + o] -= b[o];
    }
    EXPECT_TRUE(close(y, y_ref)) << what;
    std::vector<float> dw_only(w.size(), 3.f);
    cpu().linear_backward(
        x.data(), w.data(), dy.data(), nullptr, dw_only.data(), nullptr, c.n, c.in, c.out);
    EXPECT_TRUE(close(dw_only, dw_ref)) << what;
  }
}

TEST_P(CpuKernels, LinearRowsDoNotDependOnTheBatchOrThreads) {
  // Attribution runs the same image in batches of different sizes and compares the results.
  const i64 in = 84, out = 10;  // odd sizes: masked tails
  const std::vector<float> w = random_vector(out * in, 24), b = random_vector(out, 25);
  const std::vector<float> row = random_vector(in, 26), grad_row = random_vector(out, 27);
  std::vector<float> y_ref, dx_ref;
  for (int threads : {1, 2}) {
    ThreadCount guard(threads);
    for (i64 n : {i64{1}, i64{2}, i64{7}, i64{64}, i64{301}}) {
      std::vector<float> x(static_cast<std::size_t>(n * in)), dy(static_cast<std::size_t>(n * out));
      for (i64 i = 0; i < n; ++i) {
        std::copy(row.begin(), row.end(), x.begin() + i * in);
        std::copy(grad_row.begin(), grad_row.end(), dy.begin() + i * out);
      }
      std::vector<float> y(dy.size()), dx(x.size());
      cpu().linear_forward(x.data(), w.data(), b.data(), y.data(), n, in, out);
      cpu().linear_backward(x.data(), w.data(), dy.data(), dx.data(), nullptr, nullptr, n, in, out);
      if (y_ref.empty()) {
        y_ref.assign(y.begin(), y.begin() + out);
        dx_ref.assign(dx.begin(), dx.begin() + in);
      }
      for (i64 i = 0; i < n; ++i) {
        ASSERT_TRUE(std::equal(y_ref.begin(), y_ref.end(), y.begin() + i * out))
            << "batch " << n << " row " << i << ", " << threads << " threads";
        ASSERT_TRUE(std::equal(dx_ref.begin(), dx_ref.end(), dx.begin() + i * in))
            << "batch " << n << " row " << i << ", " << threads << " threads";
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// conv2d

constexpr auto conv_params = gradlens::make_conv2d_params;

struct ConvReference {
  std::vector<double> y, dx, dw, db;
};

ConvReference conv_reference(const Conv2dParams& p,
                             const std::vector<float>& x,
                             const std::vector<float>& w,
                             const std::vector<float>& b,
                             const std::vector<float>& dy) {
  ConvReference ref;
  ref.y.assign(static_cast<std::size_t>(p.n * p.k * p.oh * p.ow), 0.0);
  ref.dx.assign(x.size(), 0.0);
  ref.dw.assign(w.size(), 0.0);
  ref.db.assign(static_cast<std::size_t>(p.k), 0.0);
  for (i64 n = 0; n < p.n; ++n) {
    for (i64 k = 0; k < p.k; ++k) {
      for (i64 oh = 0; oh < p.oh; ++oh) {
        for (i64 ow = 0; ow < p.ow; ++ow) {
          const i64 yi = ((n * p.k + k) * p.oh + oh) * p.ow + ow;
          double acc = b.empty() ? 0.0 : b[k];
          const double g = dy[yi];
          ref.db[k] += g;
          for (i64 c = 0; c < p.c; ++c) {
            for (i64 r = 0; r < p.r; ++r) {
              for (i64 s = 0; s < p.s; ++s) {
                const i64 ih = oh * p.stride - p.padding + r, iw = ow * p.stride - p.padding + s;
                if (ih < 0 || ih >= p.h || iw < 0 || iw >= p.w) continue;
                const i64 xi = ((n * p.c + c) * p.h + ih) * p.w + iw;
                const i64 wi = ((k * p.c + c) * p.r + r) * p.s + s;
                acc += static_cast<double>(x[xi]) * w[wi];
                ref.dx[xi] += g * w[wi];
                ref.dw[wi] += g * x[xi];
              }
            }
          }
          ref.y[yi] = acc;
        }
      }
    }
  }
  return ref;
}

struct ConvCase {
  const char* name;
  Conv2dParams p;
};

std::vector<ConvCase> conv_cases() {
  return {
      {"tutorial conv1, batch 4", conv_params(4, 3, 32, 32, 6, 5, 5, 1, 0)},
      {"tutorial conv2, batch 5", conv_params(5, 6, 14, 14, 16, 5, 5, 1, 0)},
      {"batch 1, 3x3 pad 1", conv_params(1, 3, 8, 8, 4, 3, 3, 1, 1)},
      {"stride 2 pad 2 non-square", conv_params(3, 3, 9, 7, 5, 3, 3, 2, 2)},
      {"non-square kernel pad 1", conv_params(2, 2, 6, 11, 7, 3, 2, 1, 1)},
      {"pad 2 > needed", conv_params(2, 3, 5, 5, 13, 2, 2, 1, 2)},
      {"1x1", conv_params(3, 5, 4, 6, 3, 1, 1, 1, 0)},
      {"1x1 stride 2", conv_params(2, 4, 7, 7, 3, 1, 1, 2, 0)},
      {"stride 3 kernel 4", conv_params(2, 2, 13, 10, 2, 4, 4, 3, 1)},
      {"kernel = image", conv_params(2, 3, 5, 5, 8, 5, 5, 1, 0)},
      {"one output channel", conv_params(3, 1, 10, 10, 1, 3, 3, 1, 1)},
      {"batch 64 conv1", conv_params(64, 3, 32, 32, 6, 5, 5, 1, 0)},
      // dx in bands of rows, each with the kernel rows that meet dy (unpadded, and cropped):
      {"7x7 on a tall image", conv_params(2, 4, 20, 9, 8, 7, 7, 1, 0)},
      {"7x7 pad 1 on a tall image", conv_params(2, 4, 20, 9, 8, 7, 7, 1, 1)},
      // Strided forwards run over the input's phases:
      {"ResNet's 3x3 stride 2 pad 1", conv_params(2, 16, 16, 16, 32, 3, 3, 2, 1)},
      {"5x5 stride 2, odd sizes", conv_params(2, 3, 11, 8, 10, 5, 5, 2, 2)},
      // 3x3 stride 1 with 8 or more channels each way: Winograd (forward and dx), its tiles over
      // odd output sizes, every padding, runs of tiles across images, bands and groups.
      {"Winograd, ResNet's 3x3 pad 1", conv_params(3, 16, 12, 12, 16, 3, 3, 1, 1)},
      {"Winograd, odd output sizes", conv_params(2, 8, 9, 7, 12, 3, 3, 1, 1)},
      {"Winograd, unpadded", conv_params(2, 9, 10, 13, 8, 3, 3, 1, 0)},
      {"Winograd, pad 2", conv_params(2, 8, 5, 6, 10, 3, 3, 1, 2)},
      {"Winograd, one output row", conv_params(3, 8, 3, 20, 8, 3, 3, 1, 0)},
      {"Winograd, many small images", conv_params(23, 64, 4, 4, 40, 3, 3, 1, 1)},
      {"Winograd, many bands", conv_params(5, 8, 40, 33, 8, 3, 3, 1, 1)},
      // One tiny image: its 6 tiles padded to correlate's full tile, 42 past the image (an
      // overrun past the phases that ASan caught in CI).
      {"Winograd, one tiny image", conv_params(1, 20, 5, 6, 9, 3, 3, 1, 0)},
      // Tiles read row-aligned from the input itself, where a vector holds whole rows of tiles
      // (2 or 4 with 16 lanes) or a row whole vectors; phantom tile rows fill the last vector.
      {"Winograd rows, 8x8", conv_params(3, 16, 8, 8, 24, 3, 3, 1, 1)},
      {"Winograd rows, 16x16", conv_params(2, 8, 16, 16, 12, 3, 3, 1, 1)},
      {"Winograd rows, 32x32 over bands", conv_params(5, 8, 32, 32, 8, 3, 3, 1, 1)},
      {"Winograd rows, several vectors a row", conv_params(1, 8, 6, 64, 9, 3, 3, 1, 1)},
      {"Winograd rows, phantom tile rows", conv_params(2, 8, 13, 8, 8, 3, 3, 1, 1)},
      {"Winograd rows, odd output width", conv_params(2, 8, 12, 15, 8, 3, 3, 1, 1)},
      {"Winograd rows, unpadded", conv_params(2, 8, 10, 18, 8, 3, 3, 1, 0)},
      {"Winograd rows, pad 2", conv_params(2, 8, 6, 6, 8, 3, 3, 1, 2)},
  };
}

TEST_P(CpuKernels, Conv2dMatchesReference) {
  for (const auto& [name, p] : conv_cases()) {
    const std::vector<float> x = random_vector(p.n * p.c * p.h * p.w, 30);
    const std::vector<float> w = random_vector(p.k * p.c * p.r * p.s, 31);
    const std::vector<float> b = random_vector(p.k, 32);
    const std::vector<float> dy = random_vector(p.n * p.k * p.oh * p.ow, 33);
    const ConvReference ref = conv_reference(p, x, w, b, dy);
    std::vector<float> y(ref.y.size(), 9.f), dx(x.size(), 9.f), dw(w.size(), 9.f),
        db(b.size(), 9.f);
    cpu().conv2d_forward(p, x.data(), w.data(), b.data(), y.data());
    cpu().conv2d_backward(
        p, x.data(), w.data(), nullptr, dy.data(), dx.data(), dw.data(), db.data());
    EXPECT_TRUE(close(y, ref.y)) << name;
    EXPECT_TRUE(close(dx, ref.dx)) << name;
    EXPECT_TRUE(close(dw, ref.dw)) << name;
    EXPECT_TRUE(close(db, ref.db)) << name;

    // no bias, and each gradient on its own
    std::vector<double> y_nobias = ref.y;
    const i64 plane = p.oh * p.ow;
    for (std::size_t i = 0; i < y_nobias.size(); ++i) {
      y_nobias[i] -= b[(static_cast<i64>(i) / plane) % p.k];
    }
    cpu().conv2d_forward(p, x.data(), w.data(), nullptr, y.data());
    EXPECT_TRUE(close(y, y_nobias)) << name;
    std::vector<float> dx_only(dx.size(), 7.f), dw_only(dw.size(), 7.f), db_only(db.size(), 7.f);
    cpu().conv2d_backward(
        p, nullptr, w.data(), nullptr, dy.data(), dx_only.data(), nullptr, nullptr);
    EXPECT_TRUE(close(dx_only, ref.dx)) << name;
    cpu().conv2d_backward(
        p, x.data(), w.data(), nullptr, dy.data(), nullptr, dw_only.data(), nullptr);
    EXPECT_TRUE(close(dw_only, ref.dw)) << name;
    cpu().conv2d_backward(
        p, x.data(), w.data(), nullptr, dy.data(), nullptr, nullptr, db_only.data());
    EXPECT_TRUE(close(db_only, ref.db)) << name;
  }
}

TEST_P(CpuKernels, Conv2dWithFusedReluEqualsConvThenRelu) {
  // The fused epilogue and prologue compute exactly what the separate relu does, bit for bit.
  for (const auto& [name, p] : conv_cases()) {
    const std::vector<float> x = random_vector(p.n * p.c * p.h * p.w, 30);
    const std::vector<float> w = random_vector(p.k * p.c * p.r * p.s, 31);
    const std::vector<float> b = random_vector(p.k, 32);
    const std::vector<float> dy = random_vector(p.n * p.k * p.oh * p.ow, 33);
    std::vector<float> z(dy.size()), y(dy.size()), masked(dy.size());
    std::vector<float> dx(x.size()), dw(w.size()), db(b.size());
    cpu().conv2d_forward(p, x.data(), w.data(), b.data(), z.data());
    cpu().relu_forward(z.data(), y.data(), static_cast<i64>(z.size()));
    cpu().relu_backward(z.data(), dy.data(), masked.data(), static_cast<i64>(z.size()));
    cpu().conv2d_backward(
        p, x.data(), w.data(), nullptr, masked.data(), dx.data(), dw.data(), db.data());

    Conv2dParams fused = p;
    fused.relu = true;
    std::vector<float> y_fused(dy.size(), 9.f), dx_fused(x.size(), 9.f), dw_fused(w.size(), 9.f),
        db_fused(b.size(), 9.f);
    cpu().conv2d_forward(fused, x.data(), w.data(), b.data(), y_fused.data());
    cpu().conv2d_backward(fused,
                          x.data(),
                          w.data(),
                          y_fused.data(),
                          dy.data(),
                          dx_fused.data(),
                          dw_fused.data(),
                          db_fused.data());
    EXPECT_EQ(y_fused, y) << name;
    EXPECT_EQ(dx_fused, dx) << name;
    EXPECT_EQ(dw_fused, dw) << name;
    EXPECT_EQ(db_fused, db) << name;
    // dx alone (attribution's case) takes paths of its own: the same rule there.
    std::vector<float> dx_alone(x.size(), 5.f), dx_alone_fused(x.size(), 5.f);
    cpu().conv2d_backward(
        p, nullptr, w.data(), nullptr, masked.data(), dx_alone.data(), nullptr, nullptr);
    cpu().conv2d_backward(fused,
                          nullptr,
                          w.data(),
                          y_fused.data(),
                          dy.data(),
                          dx_alone_fused.data(),
                          nullptr,
                          nullptr);
    EXPECT_EQ(dx_alone_fused, dx_alone) << name;
  }
}

TEST_P(CpuKernels, Conv2dReluPoolEqualsConvReluThenPoolBitForBit) {
  // The pool read straight from the conv's output rows, and dy put straight where the conv's dx
  // reads it: the same values, indices and gradients as conv2d_relu, max_pool2d and their
  // backwards. A negative bias makes whole windows 0 after the ReLU, and dy holds -0.
  for (const auto& [name, conv] : conv_cases()) {
    if (conv.oh < 2 || conv.ow < 2) continue;
    Conv2dParams p = conv;
    p.relu = true;
    const Pool2dParams pp = gradlens::make_pool2d_params(p.n, p.k, p.oh, p.ow, 2, 2, 0);
    const std::vector<float> x = random_vector(p.n * p.c * p.h * p.w, 50);
    const std::vector<float> w = random_vector(p.k * p.c * p.r * p.s, 51);
    std::vector<float> b = random_vector(p.k, 52);
    for (float& v : b) v -= 0.5f;
    const i64 pooled = pp.n * pp.c * pp.oh * pp.ow, out = p.n * p.k * p.oh * p.ow;
    std::vector<float> dy = random_vector(pooled, 53);
    for (std::size_t i = 0; i < dy.size(); i += 5) dy[i] = -0.f;

    std::vector<float> z(out), y(pooled), dz(out), dx(x.size()), dw(w.size()), db(b.size());
    std::vector<std::int32_t> idx(pooled);
    cpu().conv2d_forward(p, x.data(), w.data(), b.data(), z.data());
    cpu().max_pool2d_forward(pp, z.data(), y.data(), idx.data());
    cpu().max_pool2d_backward(pp, dy.data(), idx.data(), dz.data());
    cpu().conv2d_backward(
        p, x.data(), w.data(), z.data(), dz.data(), dx.data(), dw.data(), db.data());

    std::vector<float> y_fused(pooled, 9.f), dx_fused(x.size(), 9.f), dw_fused(w.size(), 9.f),
        db_fused(b.size(), 9.f);
    std::vector<std::int32_t> idx_fused(pooled, -1);
    cpu().conv2d_relu_pool_forward(
        p, x.data(), w.data(), b.data(), y_fused.data(), idx_fused.data());
    EXPECT_EQ(y_fused, y) << name;
    EXPECT_EQ(idx_fused, idx) << name;
    cpu().conv2d_relu_pool_backward(p,
                                    x.data(),
                                    w.data(),
                                    y_fused.data(),
                                    idx_fused.data(),
                                    dy.data(),
                                    dx_fused.data(),
                                    dw_fused.data(),
                                    db_fused.data());
    EXPECT_EQ(dx_fused, dx) << name;
    EXPECT_EQ(dw_fused, dw) << name;
    EXPECT_EQ(db_fused, db) << name;
    // dx alone (attribution) goes straight into the padded dy where dx is a full correlation.
    std::vector<float> dx_alone(x.size(), 5.f), dx_alone_fused(x.size(), 5.f);
    cpu().conv2d_backward(
        p, nullptr, w.data(), z.data(), dz.data(), dx_alone.data(), nullptr, nullptr);
    cpu().conv2d_relu_pool_backward(p,
                                    nullptr,
                                    w.data(),
                                    y_fused.data(),
                                    idx_fused.data(),
                                    dy.data(),
                                    dx_alone_fused.data(),
                                    nullptr,
                                    nullptr);
    EXPECT_EQ(dx_alone_fused, dx_alone) << name;
  }
}

TEST_P(CpuKernels, WinogradRowLayoutGivesThePhaseLayoutsBits) {
  // Tiles read row-aligned from the input or through its phases go through the same transforms,
  // products and sums: the same bits (GRADLENS_WINOGRAD=phases reads every conv through phases).
  const auto conv_and_dx = [](const Conv2dParams& p,
                              const std::vector<float>& x,
                              const std::vector<float>& w,
                              const std::vector<float>& b,
                              const std::vector<float>& dy) {
    std::vector<float> y(dy.size(), 9.f), dx(x.size(), 9.f);
    cpu().conv2d_forward(p, x.data(), w.data(), b.data(), y.data());
    cpu().conv2d_backward(p, nullptr, w.data(), y.data(), dy.data(), dx.data(), nullptr, nullptr);
    return std::make_pair(y, dx);
  };
  const char* old = std::getenv("GRADLENS_WINOGRAD");
  const std::string saved = old != nullptr ? old : "";
  for (const auto& [name, conv] : conv_cases()) {
    for (bool relu : {false, true}) {
      Conv2dParams p = conv;
      p.relu = relu;
      const std::vector<float> x = random_vector(p.n * p.c * p.h * p.w, 60);
      const std::vector<float> w = random_vector(p.k * p.c * p.r * p.s, 61);
      const std::vector<float> b = random_vector(p.k, 62);
      const std::vector<float> dy = random_vector(p.n * p.k * p.oh * p.ow, 63);
      unsetenv("GRADLENS_WINOGRAD");
      const auto rows = conv_and_dx(p, x, w, b, dy);
      setenv("GRADLENS_WINOGRAD", "phases", 1);
      const auto phases = conv_and_dx(p, x, w, b, dy);
      EXPECT_EQ(rows.first, phases.first) << name << (relu ? ", ReLU" : "");
      EXPECT_EQ(rows.second, phases.second) << name << (relu ? ", ReLU" : "");
    }
  }
  if (old != nullptr) {
    setenv("GRADLENS_WINOGRAD", saved.c_str(), 1);
  } else {
    unsetenv("GRADLENS_WINOGRAD");
  }
}

TEST_P(CpuKernels, Conv2dIsReproducibleAndThreadCountIndependentUpToRounding) {
  const Conv2dParams p = conv_params(16, 6, 14, 14, 16, 5, 5, 1, 0);
  const std::vector<float> x = random_vector(p.n * p.c * p.h * p.w, 40);
  const std::vector<float> w = random_vector(p.k * p.c * p.r * p.s, 41);
  const std::vector<float> dy = random_vector(p.n * p.k * p.oh * p.ow, 42);
  std::vector<std::vector<float>> dws;
  for (int threads : {1, 2, 3}) {
    ThreadCount guard(threads);
    EXPECT_EQ(gradlens::num_threads(), threads);
    std::vector<float> dw1(w.size()), dw2(w.size()), dx(x.size());
    cpu().conv2d_backward(
        p, x.data(), w.data(), nullptr, dy.data(), dx.data(), dw1.data(), nullptr);
    cpu().conv2d_backward(
        p, x.data(), w.data(), nullptr, dy.data(), dx.data(), dw2.data(), nullptr);
    EXPECT_EQ(dw1, dw2) << threads << " threads";  // bitwise, for a given thread count
    dws.push_back(dw1);
  }
  EXPECT_TRUE(close(dws[1], to_double(dws[0])));
  EXPECT_TRUE(close(dws[2], to_double(dws[0])));
}

// ---------------------------------------------------------------------------------------------
// max_pool2d

constexpr auto pool_params = gradlens::make_pool2d_params;

TEST_P(CpuKernels, MaxPoolFirstMaximumWinsAndScatters) {
  const std::vector<Pool2dParams> cases = {
      pool_params(4, 6, 28, 28, 2, 2, 0),  // tutorial pool1 (2x2 fast path)
      pool_params(1, 3, 10, 10, 2, 2, 0),
      pool_params(2, 3, 7, 9, 2, 2, 0),  // odd sizes: last row and column dropped
      pool_params(3, 2, 7, 8, 2, 2, 0),  // odd height, even plane: planes share one flat run
      pool_params(2, 2, 9, 8, 3, 2, 1),  // padding
      pool_params(1, 2, 6, 5, 3, 1, 0),  // overlapping windows
      pool_params(3, 1, 5, 7, 2, 1, 1),  // padding with stride 1
      pool_params(64, 16, 10, 10, 2, 2, 0),
  };
  for (const Pool2dParams& p : cases) {
    // Few distinct values, so most windows hold ties.
    std::vector<float> x = random_vector(p.n * p.c * p.h * p.w, 50);
    for (float& v : x) v = std::round(v * 2.f) / 2.f;
    x[3] = -std::numeric_limits<float>::infinity();
    const std::vector<float> dy = random_vector(p.n * p.c * p.oh * p.ow, 51);
    std::vector<float> y(dy.size(), 9.f), dx(x.size(), 9.f);
    std::vector<std::int32_t> idx(dy.size(), -1);
    cpu().max_pool2d_forward(p, x.data(), y.data(), idx.data());
    cpu().max_pool2d_backward(p, dy.data(), idx.data(), dx.data());
    std::vector<double> dx_ref(x.size(), 0.0);
    for (i64 plane = 0; plane < p.n * p.c; ++plane) {
      const float* xp = x.data() + plane * p.h * p.w;
      for (i64 oh = 0; oh < p.oh; ++oh) {
        for (i64 ow = 0; ow < p.ow; ++ow) {
          float best = -std::numeric_limits<float>::infinity();
          i64 best_at = -1;
          for (i64 r = 0; r < p.kernel; ++r) {
            for (i64 s = 0; s < p.kernel; ++s) {
              const i64 ih = oh * p.stride - p.padding + r, iw = ow * p.stride - p.padding + s;
              if (ih < 0 || ih >= p.h || iw < 0 || iw >= p.w) continue;
              if (best_at < 0 || xp[ih * p.w + iw] > best) {  // strict: the first maximum stays
                best = xp[ih * p.w + iw];
                best_at = ih * p.w + iw;
              }
            }
          }
          const i64 o = (plane * p.oh + oh) * p.ow + ow;
          ASSERT_EQ(y[o], best) << "plane " << plane << " (" << oh << ", " << ow << ")";
          ASSERT_EQ(idx[o], best_at) << "plane " << plane << " (" << oh << ", " << ow << ")";
          dx_ref[plane * p.h * p.w + best_at] += dy[o];
        }
      }
    }
    EXPECT_TRUE(close(dx, dx_ref, 1e-6, 1e-7));
  }
}

TEST_P(CpuKernels, MaxPoolExactTies) {
  // Every window equal: the top-left element wins; a later larger value wins over it.
  const Pool2dParams p = pool_params(1, 1, 4, 4, 2, 2, 0);
  std::vector<float> x(16, 1.f);
  x[1 * 4 + 3] = 2.f;  // window (0, 1), bottom-right
  std::vector<float> y(4);
  std::vector<std::int32_t> idx(4);
  cpu().max_pool2d_forward(p, x.data(), y.data(), idx.data());
  EXPECT_EQ(idx, (std::vector<std::int32_t>{0, 7, 8, 10}));
  EXPECT_EQ(y, (std::vector<float>{1.f, 2.f, 1.f, 1.f}));
}

// ---------------------------------------------------------------------------------------------
// softmax, log_softmax, cross_entropy, pick, index_rows

std::vector<double> softmax_reference(const std::vector<float>& x, i64 rows, i64 cols) {
  std::vector<double> y(x.size());
  for (i64 i = 0; i < rows; ++i) {
    double m = -INFINITY, total = 0.0;
    for (i64 j = 0; j < cols; ++j) m = std::max(m, static_cast<double>(x[i * cols + j]));
    for (i64 j = 0; j < cols; ++j) total += std::exp(x[i * cols + j] - m);
    for (i64 j = 0; j < cols; ++j) y[i * cols + j] = std::exp(x[i * cols + j] - m) / total;
  }
  return y;
}

TEST_P(CpuKernels, SoftmaxAndLogSoftmax) {
  for (const auto& [rows, cols] : {std::pair<i64, i64>{1, 1}, {4, 10}, {7, 33}, {5000, 10}}) {
    std::vector<float> x = random_vector(rows * cols, 60, -20.f, 20.f);
    x[0] = 80.f;  // exp overflows in float without the max shift
    const std::vector<float> dy = random_vector(rows * cols, 61);
    const std::vector<double> sm = softmax_reference(x, rows, cols);
    std::vector<float> y(x.size()), dx(x.size()), ly(x.size()), ldx(x.size());
    cpu().softmax_forward(x.data(), y.data(), rows, cols);
    cpu().softmax_backward(y.data(), dy.data(), dx.data(), rows, cols);
    cpu().log_softmax_forward(x.data(), ly.data(), rows, cols);
    cpu().log_softmax_backward(ly.data(), dy.data(), ldx.data(), rows, cols);
    std::vector<double> dx_ref(x.size()), ly_ref(x.size()), ldx_ref(x.size());
    for (i64 i = 0; i < rows; ++i) {
      double dot = 0.0, total = 0.0;
      for (i64 j = 0; j < cols; ++j) {
        dot += sm[i * cols + j] * dy[i * cols + j];
        total += dy[i * cols + j];
      }
      for (i64 j = 0; j < cols; ++j) {
        const i64 k = i * cols + j;
        dx_ref[k] = sm[k] * (dy[k] - dot);
        ly_ref[k] = std::log(sm[k]);
        ldx_ref[k] = dy[k] - sm[k] * total;
      }
    }
    EXPECT_TRUE(close(y, sm, 1e-5, 1e-7)) << rows << "x" << cols;
    EXPECT_TRUE(close(dx, dx_ref, 1e-4, 1e-6)) << rows << "x" << cols;
    EXPECT_TRUE(close(ly, ly_ref, 1e-5, 1e-6)) << rows << "x" << cols;
    EXPECT_TRUE(close(ldx, ldx_ref, 1e-4, 1e-6)) << rows << "x" << cols;
  }
}

TEST_P(CpuKernels, CrossEntropyForwardBackward) {
  for (const auto& [rows, cols] : {std::pair<i64, i64>{1, 10}, {4, 10}, {64, 10}, {3, 1}}) {
    std::vector<float> logits = random_vector(rows * cols, 70, -5.f, 5.f);
    logits[0] = 100.f;  // stable: logsumexp, not log(sum(exp))
    std::vector<i64> targets(static_cast<std::size_t>(rows));
    for (i64 i = 0; i < rows; ++i) targets[i] = (i * 7 + 3) % cols;
    std::vector<float> probs(logits.size()), dx(logits.size());
    float loss = 0.f;
    cpu().cross_entropy_forward(logits.data(), targets.data(), probs.data(), &loss, rows, cols);
    const float dloss = 0.75f;
    cpu().cross_entropy_backward(probs.data(), targets.data(), &dloss, dx.data(), rows, cols);
    const std::vector<double> sm = softmax_reference(logits, rows, cols);
    double loss_ref = 0.0;
    std::vector<double> dx_ref(sm.size());
    for (i64 i = 0; i < rows; ++i) {
      double m = -INFINITY, total = 0.0;
      for (i64 j = 0; j < cols; ++j) m = std::max(m, static_cast<double>(logits[i * cols + j]));
      for (i64 j = 0; j < cols; ++j) total += std::exp(logits[i * cols + j] - m);
      loss_ref += m + std::log(total) - logits[i * cols + targets[i]];
      for (i64 j = 0; j < cols; ++j) {
        dx_ref[i * cols + j] =
            dloss * (sm[i * cols + j] - (j == targets[i] ? 1.0 : 0.0)) / static_cast<double>(rows);
      }
    }
    loss_ref /= static_cast<double>(rows);
    EXPECT_TRUE(std::isfinite(loss));
    EXPECT_NEAR(loss, loss_ref, 1e-5 * std::max(1.0, loss_ref)) << rows;
    EXPECT_TRUE(close(probs, sm, 1e-5, 1e-7)) << rows;
    EXPECT_TRUE(close(dx, dx_ref, 1e-5, 1e-7)) << rows;
  }
}

TEST_P(CpuKernels, PickAndIndexRows) {
  const i64 rows = 6, cols = 5;
  const std::vector<float> x = random_vector(rows * cols, 80);
  const std::vector<i64> index = {4, 0, 2, 2, 1, 4};
  std::vector<float> y(rows), dx(x.size(), 9.f);
  cpu().pick_forward(x.data(), index.data(), y.data(), rows, cols);
  for (i64 i = 0; i < rows; ++i) EXPECT_EQ(y[i], x[i * cols + index[i]]);
  const std::vector<float> dy = random_vector(rows, 81);
  cpu().pick_backward(dy.data(), index.data(), dx.data(), rows, cols);
  for (i64 i = 0; i < rows; ++i) {
    for (i64 j = 0; j < cols; ++j) EXPECT_EQ(dx[i * cols + j], j == index[i] ? dy[i] : 0.f);
  }

  // index_rows with repeats: y[j] = x[index[j]], dx rows collect every dy row that read them
  const i64 src_rows = 4, row_size = 3;
  const std::vector<float> src = random_vector(src_rows * row_size, 82);
  const std::vector<i64> pick = {3, 0, 3, 3, 1};
  const i64 count = static_cast<i64>(pick.size());
  std::vector<float> gathered(static_cast<std::size_t>(count * row_size));
  cpu().index_rows_forward(src.data(), pick.data(), gathered.data(), count, row_size);
  for (i64 j = 0; j < count; ++j) {
    for (i64 i = 0; i < row_size; ++i) {
      EXPECT_EQ(gathered[j * row_size + i], src[pick[j] * row_size + i]);
    }
  }
  const std::vector<float> grad = random_vector(count * row_size, 83);
  std::vector<float> grad_src(src.size(), 9.f);
  cpu().index_rows_backward(grad.data(), pick.data(), grad_src.data(), count, row_size, src_rows);
  std::vector<double> ref(src.size(), 0.0);
  for (i64 j = 0; j < count; ++j) {
    for (i64 i = 0; i < row_size; ++i) ref[pick[j] * row_size + i] += grad[j * row_size + i];
  }
  EXPECT_TRUE(close(grad_src, ref, 1e-6, 1e-7));  // row 2 is never picked: exactly 0
  for (i64 i = 0; i < row_size; ++i) EXPECT_EQ(grad_src[2 * row_size + i], 0.f);
}

// ---------------------------------------------------------------------------------------------
// SGD

TEST_P(CpuKernels, SgdMatchesTorchFormulaOverThreeSteps) {
  struct Case {
    float momentum, dampening, weight_decay;
    bool nesterov;
  };
  const std::vector<Case> cases = {
      {0.f, 0.f, 0.f, false},
      {0.f, 0.f, 0.01f, false},
      {0.9f, 0.f, 0.f, false},
      {0.9f, 0.1f, 0.f, false},
      {0.9f, 0.f, 0.f, true},
      {0.8f, 0.f, 0.05f, true},
      {0.5f, 0.3f, 0.02f, false},
  };
  for (const Case& c : cases) {
    for (i64 n : {i64{5}, i64{100003}}) {
      std::vector<float> param = random_vector(n, 90), buf(static_cast<std::size_t>(n), 123.f);
      std::vector<double> param_ref(param.begin(), param.end()), buf_ref(param.size(), 0.0);
      SgdParams sp;
      sp.lr = 0.01f;
      sp.momentum = c.momentum;
      sp.dampening = c.dampening;
      sp.weight_decay = c.weight_decay;
      sp.nesterov = c.nesterov;
      for (int step = 0; step < 3; ++step) {
        const std::vector<float> grad = random_vector(n, 91 + step);
        sp.first_step = step == 0;
        cpu().sgd_update(
            sp, param.data(), grad.data(), c.momentum == 0.f ? nullptr : buf.data(), n);
        for (i64 i = 0; i < n; ++i) {
          double g = grad[i] + static_cast<double>(c.weight_decay) * param_ref[i];
          if (c.momentum != 0.f) {
            buf_ref[i] = step == 0 ? g
                                   : static_cast<double>(c.momentum) * buf_ref[i] +
                                         (1.0 - static_cast<double>(c.dampening)) * g;
            g = c.nesterov ? g + static_cast<double>(c.momentum) * buf_ref[i] : buf_ref[i];
          }
          param_ref[i] -= static_cast<double>(sp.lr) * g;
        }
      }
      const std::string what = "momentum " + std::to_string(c.momentum) + " dampening " +
                               std::to_string(c.dampening) + " wd " +
                               std::to_string(c.weight_decay) + " nesterov " +
                               std::to_string(c.nesterov) + " n " + std::to_string(n);
      EXPECT_TRUE(close(param, param_ref, 1e-6, 1e-7)) << what;
      if (c.momentum != 0.f) {
        EXPECT_TRUE(close(buf, buf_ref, 1e-5, 1e-7)) << what;
      } else {
        EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](float v) { return v == 123.f; }));
      }
    }
  }
}

TEST_P(CpuKernels, SetNumThreadsOneRunsEverythingAndRestores) {
  const int before = gradlens::num_threads();
  EXPECT_GE(before, 1);
  {
    ThreadCount guard(1);
    EXPECT_EQ(gradlens::num_threads(), 1);
    const Conv2dParams p = conv_params(8, 3, 32, 32, 6, 5, 5, 1, 0);
    const std::vector<float> x = random_vector(p.n * p.c * p.h * p.w, 100);
    const std::vector<float> w = random_vector(p.k * p.c * p.r * p.s, 101);
    std::vector<float> y(static_cast<std::size_t>(p.n * p.k * p.oh * p.ow));
    cpu().conv2d_forward(p, x.data(), w.data(), nullptr, y.data());
    const ConvReference ref = conv_reference(p, x, w, {}, std::vector<float>(y.size(), 0.f));
    EXPECT_TRUE(close(y, ref.y));
  }
  EXPECT_EQ(gradlens::num_threads(), before);
}

}  // namespace
