// Every Backend kernel (kernels/backend.h) on CUDA against its CPU twin, called directly on device
// buffers: all BinaryOp/UnaryOp values, broadcasting with 0-strides over up to 8 dims, null
// optional inputs and outputs, odd, unaligned, empty and large sizes, and the SGD variants.
// NOTE: outputs start as NaN, so a kernel that skips an element, or does not zero the target of a
// scatter (autograd hands kernels Tensor::empty buffers), cannot pass. Large reductions run on
// dyadic data (k/8): every sum is then exact in any order and must match bit for bit, where random
// floats would only bound the rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gradlens/kernels/backend.h"
#include "gradlens/kernels/precision.h"
#include "tests/cuda/cuda_testing.h"
#include "tests/testing.h"

namespace {

using gradlens::Backend;
using gradlens::backend_for;
using gradlens::BinaryOp;
using gradlens::BroadcastParams;
using gradlens::Conv2dParams;
using gradlens::i64;
using gradlens::kCPU;
using gradlens::kCUDA;
using gradlens::Pool2dParams;
using gradlens::SgdParams;
using gradlens::UnaryOp;
using gradlens::testing::gpu;
using gradlens::testing::suite_fits;
using gradlens::testing::suite_on_cpu;
using CudaKernels = gradlens::testing::CudaTest;
using CudaBackend = gradlens::testing::CudaTest;

using Floats = std::vector<float>;
using Indices = std::vector<i64>;
using Int32s = std::vector<std::int32_t>;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---------------------------------------------------------------------------------------------
// Data

Floats uniform(i64 n, std::uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Floats v(static_cast<std::size_t>(n));
  for (float& x : v) x = dist(gen);
  return v;
}

// k/8 with k in [-8, -1] or [1, 8] (never 0, so a dropped term always shows). Sums of up to 2^21
// such values, and of their products (multiples of 1/64) while partial sums stay below 2^18, are
// exact in float32 whatever the order of additions.
Floats dyadic(i64 n, std::uint32_t seed, bool positive = false) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(1, 8);
  std::bernoulli_distribution negative(positive ? 0.0 : 0.5);
  Floats v(static_cast<std::size_t>(n));
  for (float& x : v) x = static_cast<float>(negative(gen) ? -dist(gen) : dist(gen)) / 8.f;
  return v;
}

// Each plane of `plane` values is a shuffle of distinct exact values: max-pool windows without
// ties, so the argmax is unique and indices must match exactly.
Floats distinct_planes(i64 planes, i64 plane, std::uint32_t seed) {
  std::mt19937 gen(seed);
  Floats v(static_cast<std::size_t>(planes * plane));
  std::vector<i64> order(static_cast<std::size_t>(plane));
  for (i64 p = 0; p < planes; ++p) {
    std::iota(order.begin(), order.end(), i64{0});
    std::shuffle(order.begin(), order.end(), gen);
    for (i64 j = 0; j < plane; ++j) {
      v[static_cast<std::size_t>(p * plane + j)] =
          static_cast<float>(order[static_cast<std::size_t>(j)] - plane / 2) / 64.f;
    }
  }
  return v;
}

Indices random_indices(i64 count, i64 bound, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<i64> dist(0, bound - 1);
  Indices v(static_cast<std::size_t>(count));
  for (i64& x : v) x = dist(gen);
  return v;
}

Floats garbage(i64 n) { return Floats(static_cast<std::size_t>(n), kNaN); }

// Exact zeros (both signs) every few elements: the kinks of relu, sign, step and stabilize.
Floats with_zeros(Floats v) {
  for (std::size_t i = 0; i < v.size(); i += 5) v[i] = (i % 2 == 0) ? 0.f : -0.f;
  return v;
}

// ---------------------------------------------------------------------------------------------
// Running one call on both backends

// The host side of one kernel call. An empty float array is passed as nullptr.
struct Arrays {
  Arrays() = default;
  Arrays(std::vector<Floats> floats,  // NOLINT: implicit, so a call reads {{x, y}, {index}}
         std::vector<Indices> indices = {},
         std::vector<Int32s> int32s = {})
      : f(std::move(floats)), idx(std::move(indices)), i32(std::move(int32s)) {}
  std::vector<Floats> f;
  std::vector<Indices> idx;
  std::vector<Int32s> i32;
};

// Arrays copied to one backend; RAII, so a failed assertion or a throwing kernel frees them.
class DeviceArrays {
 public:
  // `offset` shifts every float array by that many elements from the allocation, as a view into a
  // tensor (slice of rows of 10 logits) does: kernels must not assume 16-byte alignment.
  DeviceArrays(Backend& be, const Arrays& host, i64 offset) : be_(be) {
    for (const Floats& v : host.f) f.push_back(upload(v, offset));
    for (const Indices& v : host.idx) idx.push_back(upload(v, 0));
    for (const Int32s& v : host.i32) i32.push_back(upload(v, 0));
  }
  DeviceArrays(const DeviceArrays&) = delete;
  DeviceArrays& operator=(const DeviceArrays&) = delete;

  Arrays download() const {
    be_.synchronize();
    next_ = 0;
    Arrays out;
    out.f.resize(f.size());
    out.idx.resize(idx.size());
    out.i32.resize(i32.size());
    for (std::size_t k = 0; k < f.size(); ++k) read(f[k], out.f[k]);
    for (std::size_t k = 0; k < idx.size(); ++k) read(idx[k], out.idx[k]);
    for (std::size_t k = 0; k < i32.size(); ++k) read(i32[k], out.i32[k]);
    be_.synchronize();
    next_ = 0;
    return out;
  }

  std::vector<float*> f;
  std::vector<i64*> idx;
  std::vector<std::int32_t*> i32;

 private:
  struct Free {
    Backend* be;
    void operator()(void* p) const { be->deallocate(p); }
  };

  template <class T>
  T* upload(const std::vector<T>& v, i64 offset) {
    sizes_.push_back(v.size());
    if (v.empty()) return nullptr;
    const std::size_t bytes = (v.size() + static_cast<std::size_t>(offset)) * sizeof(T);
    owned_.emplace_back(be_.allocate(bytes), Free{&be_});
    T* p = static_cast<T*>(owned_.back().get()) + offset;
    be_.copy_from_host(p, v.data(), v.size() * sizeof(T));
    return p;
  }
  template <class T>
  void read(const T* p, std::vector<T>& v) const {
    v.resize(sizes_[next_++]);
    if (!v.empty()) be_.copy_to_host(v.data(), p, v.size() * sizeof(T));
  }

  Backend& be_;
  std::vector<std::size_t> sizes_;  // in upload order: floats, then indices, then int32s
  mutable std::size_t next_ = 0;
  std::vector<std::unique_ptr<void, Free>> owned_;
};

using Kernel = std::function<void(Backend&, DeviceArrays&)>;

Arrays run_on(Backend& be, const Arrays& in, const Kernel& kernel, i64 offset = 0) {
  DeviceArrays d(be, in, offset);
  kernel(be, d);
  return d.download();
}

struct Twin {
  Arrays cpu, cuda;
};

Twin run_twin(const Arrays& in, const Kernel& kernel, i64 offset = 0) {
  Twin t;
  t.cpu = run_on(backend_for(kCPU), in, kernel, offset);
  t.cuda = run_on(backend_for(gpu()), in, kernel, offset);
  return t;
}

// ---------------------------------------------------------------------------------------------
// Tolerances: |cuda - cpu| <= rtol * |cpu| + atol, both NaN counting as equal.

struct Tol {
  double rtol, atol;
};
// Elementwise: a few ulps (nvcc contracts a * b + c into an FMA where the CPU may round twice).
constexpr Tol kElementwise{1e-5, 1e-6};
// Data movement, comparisons and dyadic sums: bit for bit.
constexpr Tol kExact{0, 0};
// A sum of `length` terms of magnitude <= 1 on random data: 1e-4 relative, plus an absolute part
// growing like sqrt(length), as rounding does when the order of additions differs (the CPU often
// accumulates in double, the GPU in float along a tree).
Tol reduction(i64 length) { return {1e-4, 1e-5 * std::sqrt(static_cast<double>(length))}; }

::testing::AssertionResult close(const Floats& cuda, const Floats& cpu, Tol tol) {
  if (cuda.size() != cpu.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << cuda.size() << " vs " << cpu.size();
  }
  std::size_t bad = 0, worst = 0;
  double worst_excess = -1;
  std::ostringstream first;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    const double a = cuda[i], e = cpu[i];
    if ((std::isnan(a) && std::isnan(e)) || a == e) continue;  // equal infinities too
    const double excess = std::fabs(a - e) - (tol.rtol * std::fabs(e) + tol.atol);
    if (excess > 0 || std::isnan(excess)) {
      if (bad < 5) first << "\n  [" << i << "] cuda " << a << " cpu " << e;
      if (std::isnan(excess) || excess > worst_excess) {
        worst_excess = std::isnan(excess) ? std::numeric_limits<double>::infinity() : excess;
        worst = i;
      }
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << cpu.size() << " elements differ (rtol " << tol.rtol << ", atol "
         << tol.atol << "); worst at [" << worst << "]: cuda " << cuda[worst] << " cpu "
         << cpu[worst] << first.str();
}

template <class T>
::testing::AssertionResult same(const std::vector<T>& cuda, const std::vector<T>& cpu) {
  if (cuda.size() != cpu.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << cuda.size() << " vs " << cpu.size();
  }
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    if (cuda[i] != cpu[i]) {
      return ::testing::AssertionFailure()
             << "first difference at [" << i << "]: cuda " << cuda[i] << " cpu " << cpu[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// Float arrays `which` of a twin run must agree within `tol`.
void expect_close(const Twin& t,
                  std::initializer_list<std::size_t> which,
                  Tol tol,
                  const std::string& what) {
  for (std::size_t k : which) {
    EXPECT_TRUE(close(t.cuda.f[k], t.cpu.f[k], tol)) << what << ", array " << k;
  }
}

const std::vector<i64> kSizes = {1, 7, 1000, 4099, 1000003};

// ---------------------------------------------------------------------------------------------
// Broadcasting

using gradlens::testing::make_broadcast;

struct BroadcastCase {
  std::vector<i64> a, b;
};

std::string shape_text(const std::vector<i64>& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

const std::vector<BroadcastCase> kBroadcastCases = {
    {{7, 13}, {7, 13}},                                    // same shape
    {{4, 5, 7, 13}, {5, 1, 1}},                            // per-channel bias
    {{4, 5, 7, 13}, {4, 1, 1, 1}},                         // per-sample scale
    {{5, 1, 1}, {4, 5, 7, 13}},                            // a is the broadcast one
    {{3, 1, 5}, {1, 4, 1}},                                // both broadcast, 0-strides in each
    {{2, 1, 3, 1, 5}, {4, 1, 6, 1}},                       // 5 dims, interleaved
    {{2, 1, 2, 1, 2, 1, 2, 3}, {1, 2, 1, 2, 1, 2, 1, 3}},  // kMaxDims
    {{1, 10}, {64, 1}},                                    // outer product
    {{1000003}, {}},                                       // tensor and scalar, large
    {{}, {1000003}},                                       // scalar and tensor, large
    {{}, {}},                                              // 0 dims
    {{1}, {1}},
};

// ---------------------------------------------------------------------------------------------
// Memory

TEST(CudaDevice, UnknownIndexIsAClearError) {
  // Runs everywhere: without CUDA the stub must refuse cuda:99 just as clearly.
  try {
    backend_for(gradlens::Device{gradlens::DeviceType::CUDA, 99});
    FAIL() << "backend_for(cuda:99) returned a backend";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("99"), std::string::npos) << e.what();
  }
}

TEST_F(CudaBackend, DeviceAndCopies) {
  Backend& be = backend_for(gpu());
  EXPECT_TRUE(be.device() == gpu()) << be.device().str();
  EXPECT_TRUE(backend_for(kCPU).device().is_cpu());
  // An odd byte count: copies are in bytes, not floats.
  std::vector<unsigned char> src(1001), back(1001, 0);
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<unsigned char>(i * 37 + 11);
  void* a = be.allocate(src.size());
  void* b = be.allocate(src.size());
  be.copy_from_host(a, src.data(), src.size());
  be.copy(b, a, src.size());
  be.copy_to_host(back.data(), b, back.size());
  be.synchronize();
  EXPECT_EQ(back, src);
  be.deallocate(a);
  be.deallocate(b);
  void* empty = be.allocate(0);  // no bytes: may be null, must not throw
  be.deallocate(empty);
}

TEST_F(CudaBackend, ImpossibleAllocationNamesItsSizeAndLeavesTheDeviceUsable) {
  if (suite_on_cpu()) GTEST_SKIP() << "CUDA only";
  Backend& be = backend_for(kCUDA);
  const std::size_t bytes = std::size_t{1} << 50;  // 1 PiB
  try {
    void* p = be.allocate(bytes);
    be.deallocate(p);
    FAIL() << "allocating 2^50 bytes succeeded";
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    const bool names_size = msg.find("1125899906842624") != std::string::npos ||
                            msg.find("1048576") != std::string::npos ||
                            msg.find("TiB") != std::string::npos ||
                            msg.find("PiB") != std::string::npos;
    EXPECT_TRUE(names_size) << "message does not name the size (1125899906842624 bytes): " << msg;
  }
  // NOTE: a failed cudaMalloc leaves its error for cudaGetLastError(); if the backend does not
  // clear it, the next launch check reports the stale out-of-memory error instead of succeeding.
  const Twin t =
      run_twin({{garbage(1000)}}, [](Backend& b, DeviceArrays& d) { b.fill(d.f[0], 1.5f, 1000); });
  EXPECT_TRUE(close(t.cuda.f[0], Floats(1000, 1.5f), kExact));
}

// ---------------------------------------------------------------------------------------------
// Elementwise

TEST_F(CudaKernels, FillAndAffine) {
  for (i64 n : kSizes) {
    if (!suite_fits(n)) continue;
    const Twin fill =
        run_twin({{garbage(n)}}, [n](Backend& be, DeviceArrays& d) { be.fill(d.f[0], -3.25f, n); });
    EXPECT_TRUE(close(fill.cuda.f[0], Floats(static_cast<std::size_t>(n), -3.25f), kExact));
    const std::vector<std::pair<float, float>> alpha_beta = {
        {-1.5f, 0.25f}, {1.f, 0.3f}, {-2.f, 0.f}, {-1.f, 0.f}};
    for (const auto& pair : alpha_beta) {
      const float alpha = pair.first, beta = pair.second;  // Clang 14 cannot capture bindings
      const Twin t = run_twin({{uniform(n, 1), garbage(n)}}, [=](Backend& be, DeviceArrays& d) {
        be.affine(d.f[0], alpha, beta, d.f[1], n);
      });
      expect_close(t, {1}, kElementwise, "affine n=" + std::to_string(n));
    }
  }
}

TEST_F(CudaKernels, BinaryForwardEveryOpAndBroadcast) {
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div}) {
    for (const BroadcastCase& c : kBroadcastCases) {
      const BroadcastParams p = make_broadcast(c.a, c.b);
      if (!suite_fits(p.numel)) continue;
      Floats b = uniform(p.b_numel, 3, 0.5f, 2.f);  // away from 0 for div
      for (std::size_t i = 0; i < b.size(); i += 2) b[i] = -b[i];
      const Twin t = run_twin(
          {{uniform(p.a_numel, 2), b, garbage(p.numel)}},
          [&](Backend& be, DeviceArrays& d) { be.binary_forward(op, p, d.f[0], d.f[1], d.f[2]); });
      expect_close(t,
                   {2},
                   kElementwise,
                   "op " + std::to_string(static_cast<int>(op)) + " " + shape_text(c.a) + " " +
                       shape_text(c.b));
    }
  }
}

TEST_F(CudaKernels, BinaryBackwardSumsOverBroadcastWithNullOutputs) {
  // Autograd passes a and b only for Mul (autograd/ops/elementwise.cpp): Add and Sub get nulls.
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul}) {
    for (const BroadcastCase& c : kBroadcastCases) {
      const BroadcastParams p = make_broadcast(c.a, c.b);
      if (!suite_fits(p.numel)) continue;
      for (int mask : {3, 1, 2}) {  // bit 0: da wanted, bit 1: db wanted
        const bool mul = op == BinaryOp::Mul;
        const Arrays in{{mul ? dyadic(p.a_numel, 4) : Floats{},
                         mul ? dyadic(p.b_numel, 5) : Floats{},
                         dyadic(p.numel, 6),
                         (mask & 1) ? garbage(p.a_numel) : Floats{},
                         (mask & 2) ? garbage(p.b_numel) : Floats{}}};
        const Twin t = run_twin(in, [&](Backend& be, DeviceArrays& d) {
          be.binary_backward(op, p, d.f[0], d.f[1], d.f[2], d.f[3], d.f[4]);
        });
        expect_close(t,
                     {3, 4},
                     kExact,
                     "op " + std::to_string(static_cast<int>(op)) + " mask " +
                         std::to_string(mask) + " " + shape_text(c.a) + " " + shape_text(c.b));
      }
    }
  }
  // Random floats: the same sums within rounding.
  const BroadcastParams p = make_broadcast({suite_fits(301056) ? 64 : 4, 6, 28, 28}, {6, 1, 1});
  const Twin t =
      run_twin({{uniform(p.a_numel, 7),
                 uniform(p.b_numel, 8),
                 uniform(p.numel, 9),
                 garbage(p.a_numel),
                 garbage(p.b_numel)}},
               [&](Backend& be, DeviceArrays& d) {
                 be.binary_backward(BinaryOp::Mul, p, d.f[0], d.f[1], d.f[2], d.f[3], d.f[4]);
               });
  expect_close(t, {3}, kElementwise, "mul da");
  expect_close(t, {4}, reduction(p.numel / p.b_numel), "mul db");
}

TEST_F(CudaKernels, UnaryForwardEveryOp) {
  for (UnaryOp op : gradlens::kAllUnaryOps) {
    for (i64 n : kSizes) {
      if (!suite_fits(n)) continue;
      if (!suite_fits(n)) continue;
      // Sqrt sees negatives too: NaN on both sides.
      const Twin t = run_twin(
          {{with_zeros(uniform(n, 10, -2.f, 2.f)), garbage(n)}},
          [=](Backend& be, DeviceArrays& d) { be.unary_forward(op, d.f[0], d.f[1], n, 0.01f); });
      expect_close(t,
                   {1},
                   kElementwise,
                   "op " + std::to_string(static_cast<int>(op)) + " n=" + std::to_string(n));
    }
  }
}

TEST_F(CudaKernels, GatherWithFillAndEveryIndexPattern) {
  // Reversed, strided with holes (fill), and repeated reads: the CPU twin's output bit for bit.
  for (i64 n : kSizes) {
    if (!suite_fits(n)) continue;
    Indices index(static_cast<std::size_t>(n));
    for (i64 i = 0; i < n; ++i)
      index[static_cast<std::size_t>(i)] = i % 5 == 3 ? -1 : (i % 7 == 0 ? 0 : n - 1 - i);
    const Twin t = run_twin(
        {{uniform(n, 58), garbage(n)}, {index}},
        [=](Backend& be, DeviceArrays& d) { be.gather(d.f[0], d.idx[0], -INFINITY, d.f[1], n); });
    expect_close(t, {1}, kExact, "gather n=" + std::to_string(n));
  }
}

TEST_F(CudaKernels, SafeDivAtTheThreshold) {
  const float eps = 1e-2f;
  for (i64 n : kSizes) {
    if (!suite_fits(n)) continue;
    Floats den = uniform(n, 12);
    for (std::size_t i = 0; i < den.size(); i += 11) den[i] = 0.f;
    for (std::size_t i = 3; i < den.size(); i += 11) den[i] = (i % 2) ? eps : -eps;  // divides
    for (std::size_t i = 5; i < den.size(); i += 11) den[i] = 0.999f * eps;          // falls back
    const Twin t = run_twin(
        {{uniform(n, 11), den, uniform(n, 13), garbage(n)}},
        [=](Backend& be, DeviceArrays& d) { be.safe_div(d.f[0], d.f[1], d.f[2], eps, d.f[3], n); });
    expect_close(t, {3}, kElementwise, "n=" + std::to_string(n));
  }
}

TEST_F(CudaKernels, ReluForwardAndBackwardAreExactWithZeroAtZero) {
  for (i64 n : kSizes) {
    if (!suite_fits(n)) continue;
    const Twin t = run_twin({{with_zeros(uniform(n, 14)), uniform(n, 15), garbage(n), garbage(n)}},
                            [=](Backend& be, DeviceArrays& d) {
                              be.relu_forward(d.f[0], d.f[2], n);
                              be.relu_backward(d.f[0], d.f[1], d.f[3], n);
                            });
    expect_close(t, {2, 3}, kExact, "n=" + std::to_string(n));
  }
}

TEST_F(CudaKernels, ChannelAffineItsResidualAddAndItsReluAreExact) {
  // One rounding per operation on both sides (no FMA contraction), so bit for bit, the masks
  // included; with and without the residual addend (and its gradient).
  const struct {
    i64 outer, channels, inner;
  } shapes[] = {{1, 1, 1}, {2, 3, 7}, {8, 16, 1024}, {5, 64, 1}, {3, 7, 4099}};
  for (const auto& s : shapes) {
    const i64 n = s.outer * s.channels * s.inner;
    if (!suite_fits(n)) continue;
    for (const bool relu : {false, true}) {
      for (const bool residual : {false, true}) {
        const Twin t = run_twin({{with_zeros(uniform(n, 16)),
                                  uniform(s.channels, 17, -2.f, 2.f),
                                  uniform(s.channels, 18),
                                  uniform(n, 19),
                                  garbage(n),
                                  garbage(n),
                                  uniform(n, 20),
                                  garbage(n)}},
                                [=](Backend& be, DeviceArrays& d) {
                                  be.channel_affine_forward(d.f[0],
                                                            d.f[1],
                                                            d.f[2],
                                                            residual ? d.f[6] : nullptr,
                                                            d.f[4],
                                                            s.outer,
                                                            s.channels,
                                                            s.inner,
                                                            relu);
                                  be.channel_affine_backward(relu ? d.f[4] : nullptr,
                                                             d.f[3],
                                                             d.f[1],
                                                             d.f[5],
                                                             residual ? d.f[7] : nullptr,
                                                             s.outer,
                                                             s.channels,
                                                             s.inner);
                                });
        const std::string what =
            "n=" + std::to_string(n) + (relu ? " relu" : "") + (residual ? " residual" : "");
        expect_close(t, {4, 5}, kExact, what);
        if (residual) expect_close(t, {7}, kExact, what + " d_addend");
      }
    }
  }
}

TEST_F(CudaKernels, EmptyInputsAreNoOps) {
  // n == 0 happens (an empty batch); a launch with a zero-sized grid is a CUDA error, not a no-op.
  const Twin t = run_twin({{garbage(1)}}, [](Backend& be, DeviceArrays& d) {
    be.fill(nullptr, 1.f, 0);
    be.affine(nullptr, 2.f, 1.f, nullptr, 0);
    be.relu_forward(nullptr, nullptr, 0);
    be.relu_backward(nullptr, nullptr, nullptr, 0);
    be.channel_affine_forward(nullptr, nullptr, nullptr, nullptr, nullptr, 0, 3, 5, true);
    be.channel_affine_backward(nullptr, nullptr, nullptr, nullptr, nullptr, 0, 3, 5);
    be.unary_forward(UnaryOp::Abs, nullptr, nullptr, 0, 0.f);
    be.safe_div(nullptr, nullptr, nullptr, 1e-3f, nullptr, 0);
    be.sgd_update(SgdParams{}, nullptr, nullptr, nullptr, 0);
    be.sum(nullptr, 0, d.f[0]);  // the empty sum is 0
  });
  EXPECT_TRUE(close(t.cuda.f[0], {0.f}, kExact));
}

// ---------------------------------------------------------------------------------------------
// Reductions

TEST_F(CudaKernels, SumOfOddAndLargeLengths) {
  for (i64 n : {1, 7, 1000, 1025, 65537, 300007}) {
    if (!suite_fits(n)) continue;
    const Twin t = run_twin({{uniform(n, 16), garbage(1)}},
                            [=](Backend& be, DeviceArrays& d) { be.sum(d.f[0], n, d.f[1]); });
    expect_close(t, {1}, reduction(n), "random n=" + std::to_string(n));
  }
  // All positive: partial sums reach 6e5, still exact; 4e6 values would pass 2^21 and round.
  for (i64 n : {1000003, (1 << 20) + 1, 4000037}) {
    for (bool positive : {false, true}) {
      if ((positive && n > 1100000) || !suite_fits(n)) continue;
      const Twin t = run_twin({{dyadic(n, 17, positive), garbage(1)}},
                              [=](Backend& be, DeviceArrays& d) { be.sum(d.f[0], n, d.f[1]); });
      expect_close(t, {1}, kExact, "dyadic n=" + std::to_string(n));
    }
  }
}

TEST_F(CudaKernels, SumDimOverEveryLayout) {
  struct Case {
    i64 outer, size, inner;
  };
  for (const Case c : std::vector<Case>{{1, 1, 1},
                                        {5, 1, 7},
                                        {1, 13, 1},
                                        {1, 1, 29},
                                        {7, 13, 5},
                                        {300, 77, 1},
                                        {1, 5, 100003},
                                        {3, 1000, 257},
                                        {10000, 10, 1},
                                        {64, 6, 784}}) {
    const i64 n = c.outer * c.size * c.inner;
    if (!suite_fits(n)) continue;
    const Twin t =
        run_twin({{uniform(n, 18), garbage(c.outer * c.inner)}}, [=](Backend& be, DeviceArrays& d) {
          be.sum_dim(d.f[0], c.outer, c.size, c.inner, d.f[1]);
        });
    expect_close(t,
                 {1},
                 reduction(c.size),
                 "outer " + std::to_string(c.outer) + " size " + std::to_string(c.size) +
                     " inner " + std::to_string(c.inner));
  }
  for (const Case c : std::vector<Case>{{1, 1000003, 1}, {2, 500001, 3}, {3, 100003, 1}}) {
    const i64 n = c.outer * c.size * c.inner;
    if (!suite_fits(n)) continue;
    const Twin t =
        run_twin({{dyadic(n, 19), garbage(c.outer * c.inner)}}, [=](Backend& be, DeviceArrays& d) {
          be.sum_dim(d.f[0], c.outer, c.size, c.inner, d.f[1]);
        });
    expect_close(t, {1}, kExact, "dyadic size " + std::to_string(c.size));
  }
}

// ---------------------------------------------------------------------------------------------
// linear

struct LinearCase {
  i64 n, in, out;
  bool bias;
};

TEST_F(CudaKernels, LinearForward) {
  for (const LinearCase c : std::vector<LinearCase>{{1, 400, 120, true},
                                                    {4, 400, 120, true},
                                                    {7, 13, 5, true},
                                                    {7, 13, 5, false},
                                                    {3, 1, 1, true},
                                                    {64, 84, 10, true},
                                                    {33, 129, 65, false},
                                                    {1000, 120, 84, true},
                                                    {100000, 84, 10, true}}) {  // 100,000 rows
    if (!suite_fits(c.n * c.in)) continue;
    const Twin t = run_twin({{uniform(c.n * c.in, 20),
                              uniform(c.out * c.in, 21),
                              c.bias ? uniform(c.out, 22) : Floats{},
                              garbage(c.n * c.out)}},
                            [=](Backend& be, DeviceArrays& d) {
                              be.linear_forward(d.f[0], d.f[1], d.f[2], d.f[3], c.n, c.in, c.out);
                            });
    expect_close(t,
                 {3},
                 reduction(c.in + 1),
                 "n " + std::to_string(c.n) + " in " + std::to_string(c.in) + " out " +
                     std::to_string(c.out) + (c.bias ? "" : " no bias"));
  }
  // The tutorial's fc1 at inference over the whole test set.
  const LinearCase big{10000, 400, 120, true};
  if (!suite_fits(big.n * big.in)) return;
  const Twin t =
      run_twin({{dyadic(big.n * big.in, 23),
                 dyadic(big.out * big.in, 24),
                 dyadic(big.out, 25),
                 garbage(big.n * big.out)}},
               [=](Backend& be, DeviceArrays& d) {
                 be.linear_forward(d.f[0], d.f[1], d.f[2], d.f[3], big.n, big.in, big.out);
               });
  expect_close(t, {3}, kExact, "n 10000 in 400 out 120");
}

TEST_F(CudaKernels, LinearBackwardWithNullOutputs) {
  for (const LinearCase c : std::vector<LinearCase>{{1, 400, 120, true},
                                                    {7, 13, 5, true},
                                                    {64, 84, 10, true},
                                                    {3, 1, 1, true},
                                                    {33, 129, 65, true},
                                                    {100000, 84, 10, true}}) {
    if (!suite_fits(c.n * c.in)) continue;  // the 100,000 rows: dw is a split-k reduction
    // bits: dx, dw, db wanted; 7 = training, 1 = attribution (input grad only), 6 = first layer
    for (int mask : {7, 1, 6, 4, 2}) {
      const Arrays in{{uniform(c.n * c.in, 26),
                       uniform(c.out * c.in, 27),
                       uniform(c.n * c.out, 28),
                       (mask & 1) ? garbage(c.n * c.in) : Floats{},
                       (mask & 2) ? garbage(c.out * c.in) : Floats{},
                       (mask & 4) ? garbage(c.out) : Floats{}}};
      const Twin t = run_twin(in, [=](Backend& be, DeviceArrays& d) {
        be.linear_backward(d.f[0], d.f[1], d.f[2], d.f[3], d.f[4], d.f[5], c.n, c.in, c.out);
      });
      const std::string what = "n " + std::to_string(c.n) + " in " + std::to_string(c.in) +
                               " out " + std::to_string(c.out) + " mask " + std::to_string(mask);
      expect_close(t, {3}, reduction(c.out), what + " dx");
      expect_close(t, {4, 5}, reduction(c.n), what + " dw/db");
    }
  }
  const LinearCase big{10000, 400, 120, true};
  if (!suite_fits(big.n * big.in)) return;
  const Twin t = run_twin(
      {{dyadic(big.n * big.in, 29),
        dyadic(big.out * big.in, 30),
        dyadic(big.n * big.out, 31),
        garbage(big.n * big.in),
        garbage(big.out * big.in),
        garbage(big.out)}},
      [=](Backend& be, DeviceArrays& d) {
        be.linear_backward(d.f[0], d.f[1], d.f[2], d.f[3], d.f[4], d.f[5], big.n, big.in, big.out);
      });
  expect_close(t, {3, 4, 5}, kExact, "n 10000 in 400 out 120");
}

// ---------------------------------------------------------------------------------------------
// conv2d

constexpr auto conv = gradlens::make_conv2d_params;

std::string conv_text(const Conv2dParams& p) {
  std::ostringstream s;
  s << "x [" << p.n << ", " << p.c << ", " << p.h << ", " << p.w << "] w [" << p.k << ", " << p.c
    << ", " << p.r << ", " << p.s << "] stride " << p.stride << " padding " << p.padding;
  return s.str();
}

struct ConvCase {
  Conv2dParams p;
  bool bias;
};

const std::vector<ConvCase> kConvCases = {
    {conv(4, 3, 32, 32, 6, 5, 5, 1, 0), true},   // the Net's conv1
    {conv(4, 6, 14, 14, 16, 5, 5, 1, 0), true},  // the Net's conv2
    {conv(2, 5, 7, 13, 3, 3, 2, 2, 1), true},    // odd image, non-square kernel, stride 2, pad 1
    {conv(1, 3, 9, 9, 4, 3, 3, 1, 2), false},    // batch 1, padding 2, no bias
    {conv(3, 4, 5, 6, 7, 1, 1, 1, 0), true},     // 1x1
    {conv(2, 2, 11, 8, 3, 4, 3, 3, 1), true},    // stride 3
    {conv(1, 2, 5, 5, 3, 5, 5, 1, 0), true},     // kernel covers the image: 1x1 output
    {conv(2, 5, 7, 13, 5, 3, 3, 2, 1), false},   // stride 2, pad 1, square kernel
    {conv(64, 6, 14, 14, 16, 5, 5, 1, 0), true},
    {conv(2, 3, 10, 11, 40, 3, 3, 1, 1), true},  // 3 blocks of 16 output channels, odd width
    {conv(2, 20, 6, 7, 9, 3, 3, 1, 0), true},    // 2 blocks of input channels (dx); 9 of 16
    {conv(2, 7, 9, 10, 5, 3, 2, 2, 0), true},    // stride 2, widths not a multiple of 4
    {conv(1, 64, 8, 8, 4, 5, 5, 1, 2), false},   // forward weights too big: the implicit GEMM
    {conv(1, 4, 6, 6, 40, 7, 7, 1, 3), true},    // dx weights too big: the implicit GEMM
};

TEST_F(CudaKernels, Conv2dForward) {
  for (const ConvCase& c : kConvCases) {
    const Conv2dParams& p = c.p;
    const Twin t = run_twin({{uniform(p.n * p.c * p.h * p.w, 32),
                              uniform(p.k * p.c * p.r * p.s, 33),
                              c.bias ? uniform(p.k, 34) : Floats{},
                              garbage(p.n * p.k * p.oh * p.ow)}},
                            [&](Backend& be, DeviceArrays& d) {
                              be.conv2d_forward(p, d.f[0], d.f[1], d.f[2], d.f[3]);
                            });
    expect_close(t, {3}, reduction(p.c * p.r * p.s + 1), conv_text(p));
  }
}

TEST_F(CudaKernels, Conv2dBackwardWithNullOutputs) {
  for (const ConvCase& c : kConvCases) {
    const Conv2dParams& p = c.p;
    // bits: dx, dw, db; 6 = the Net's conv1 (no input grad), 1 = attribution, 3 = no bias
    for (int mask : {7, 6, 1, 3, 4}) {
      const Arrays in{{uniform(p.n * p.c * p.h * p.w, 35),
                       uniform(p.k * p.c * p.r * p.s, 36),
                       uniform(p.n * p.k * p.oh * p.ow, 37),
                       (mask & 1) ? garbage(p.n * p.c * p.h * p.w) : Floats{},
                       (mask & 2) ? garbage(p.k * p.c * p.r * p.s) : Floats{},
                       (mask & 4) ? garbage(p.k) : Floats{}}};
      const Twin t = run_twin(in, [&](Backend& be, DeviceArrays& d) {
        be.conv2d_backward(p, d.f[0], d.f[1], nullptr, d.f[2], d.f[3], d.f[4], d.f[5]);
      });
      const std::string what = conv_text(p) + " mask " + std::to_string(mask);
      expect_close(t, {3}, reduction(p.k * p.r * p.s), what + " dx");
      expect_close(t, {4, 5}, reduction(p.n * p.oh * p.ow), what + " dw/db");
    }
  }
}

TEST_F(CudaKernels, Conv2dWithFusedRelu) {
  // The epilogue and the masked prologue of every kernel (tiled, narrow, plain, both dw kernels,
  // db) against the CPU twin; y holds exact zeros and both signs, so the mask matters.
  for (const ConvCase& c : kConvCases) {
    Conv2dParams p = c.p;
    p.relu = true;
    const Twin fwd = run_twin({{uniform(p.n * p.c * p.h * p.w, 42),
                                uniform(p.k * p.c * p.r * p.s, 43),
                                c.bias ? uniform(p.k, 44) : Floats{},
                                garbage(p.n * p.k * p.oh * p.ow)}},
                              [&](Backend& be, DeviceArrays& d) {
                                be.conv2d_forward(p, d.f[0], d.f[1], d.f[2], d.f[3]);
                              });
    expect_close(fwd, {3}, reduction(p.c * p.r * p.s + 1), conv_text(p) + " relu forward");
    Floats y = uniform(p.n * p.k * p.oh * p.ow, 45);
    for (std::size_t i = 0; i < y.size(); i += 7) y[i] = 0.f;
    // dx alone (attribution: the kernels mask dy as they read it), then all three (training: dy
    // masked once into scratch)
    for (const bool weights : {false, true}) {
      const Twin bwd =
          run_twin({{uniform(p.n * p.c * p.h * p.w, 46),
                     uniform(p.k * p.c * p.r * p.s, 47),
                     y,
                     uniform(p.n * p.k * p.oh * p.ow, 48),
                     garbage(p.n * p.c * p.h * p.w),
                     weights ? garbage(p.k * p.c * p.r * p.s) : Floats{},
                     weights ? garbage(p.k) : Floats{}}},
                   [&](Backend& be, DeviceArrays& d) {
                     be.conv2d_backward(p, d.f[0], d.f[1], d.f[2], d.f[3], d.f[4], d.f[5], d.f[6]);
                   });
      expect_close(bwd, {4}, reduction(p.k * p.r * p.s), conv_text(p) + " relu dx");
      if (weights) {
        expect_close(bwd, {5, 6}, reduction(p.n * p.oh * p.ow), conv_text(p) + " relu dw/db");
      }
    }
  }
}

TEST_F(CudaKernels, Conv2dReluPool) {
  // The CUDA side composes its conv, max_pool2d and relu_backward kernels: against the CPU's fused
  // op, pooled values and indices from the forward, then dx (attribution) and all three.
  for (const ConvCase& c : kConvCases) {
    Conv2dParams p = c.p;
    if (p.oh < 2 || p.ow < 2) continue;
    p.relu = true;
    const i64 pooled = p.n * p.k * (p.oh / 2) * (p.ow / 2);
    const Twin fwd =
        run_twin({{uniform(p.n * p.c * p.h * p.w, 60),
                   uniform(p.k * p.c * p.r * p.s, 61),
                   c.bias ? uniform(p.k, 62) : Floats{},
                   garbage(pooled)},
                  {},
                  {Int32s(static_cast<std::size_t>(pooled), -7)}},
                 [&](Backend& be, DeviceArrays& d) {
                   be.conv2d_relu_pool_forward(p, d.f[0], d.f[1], d.f[2], d.f[3], d.i32[0]);
                 });
    expect_close(fwd, {3}, reduction(p.c * p.r * p.s + 1), conv_text(p) + " relu pool forward");
    EXPECT_TRUE(same(fwd.cuda.i32[0], fwd.cpu.i32[0])) << conv_text(p) << " indices";
    for (const bool weights : {false, true}) {
      const Twin bwd =
          run_twin({{fwd.cpu.f[0],
                     fwd.cpu.f[1],
                     fwd.cpu.f[3],
                     uniform(pooled, 63),
                     garbage(p.n * p.c * p.h * p.w),
                     weights ? garbage(p.k * p.c * p.r * p.s) : Floats{},
                     weights ? garbage(p.k) : Floats{}},
                    {},
                    {fwd.cpu.i32[0]}},
                   [&](Backend& be, DeviceArrays& d) {
                     be.conv2d_relu_pool_backward(
                         p, d.f[0], d.f[1], d.f[2], d.i32[0], d.f[3], d.f[4], d.f[5], d.f[6]);
                   });
      expect_close(bwd, {4}, reduction(p.k * p.r * p.s), conv_text(p) + " relu pool dx");
      if (weights) {
        expect_close(bwd, {5, 6}, reduction(p.n * p.oh * p.ow), conv_text(p) + " relu pool dw/db");
      }
    }
  }
}

TEST_F(CudaKernels, Conv2dOnTheWholeTestSet) {
  // conv1 over 10,000 images: the batch of `gradlens eval` in one call, and its weight gradient,
  // a sum over 7.8 million terms per element.
  const Conv2dParams p = conv(10000, 3, 32, 32, 6, 5, 5, 1, 0);
  if (!suite_fits(p.n * p.k * p.oh * p.ow)) GTEST_SKIP() << "GRADLENS_CUDA_SUITE_SMALL=1";
  const Floats x = dyadic(p.n * p.c * p.h * p.w, 38), w = dyadic(p.k * p.c * p.r * p.s, 39);
  const Twin fwd = run_twin(
      {{x, w, dyadic(p.k, 40), garbage(p.n * p.k * p.oh * p.ow)}},
      [&](Backend& be, DeviceArrays& d) { be.conv2d_forward(p, d.f[0], d.f[1], d.f[2], d.f[3]); });
  expect_close(fwd, {3}, kExact, "forward " + conv_text(p));
  const Twin bwd =
      run_twin({{x, w, dyadic(p.n * p.k * p.oh * p.ow, 41), {}, garbage(w.size()), garbage(p.k)}},
               [&](Backend& be, DeviceArrays& d) {
                 be.conv2d_backward(p, d.f[0], d.f[1], nullptr, d.f[2], d.f[3], d.f[4], d.f[5]);
               });
  expect_close(bwd, {4, 5}, kExact, "backward " + conv_text(p));
}

// ---------------------------------------------------------------------------------------------
// Counter-based noise: the same draws bit for bit (the emulator uses the host's libm; on a GPU the
// double log/sin/cos may move a float by one rounding step in about one value in 10^8).

TEST_F(CudaKernels, NormalNoiseDrawsTheCpusNoise) {
  const gradlens::NoiseParams p{42, 1, 7, 75, 0.25f};  // rows of 75: Philox blocks straddle rows
  const Arrays in{{uniform(p.rows * p.row_size, 61), garbage(p.rows * p.row_size)},
                  {Indices{5, 5, 9, 0, 123456789012, 9, 3}, Indices{0, 1, 7, 3, 2, 0, 100000}}};
  const Twin t = run_twin(in, [&](Backend& be, DeviceArrays& d) {
    be.normal_noise(p, d.idx[0], d.idx[1], d.f[0], d.f[1]);
  });
  expect_close(t, {1}, kExact, "normal_noise");
}

// ---------------------------------------------------------------------------------------------
// The TF32 tensor-core path (--precision tf32): on inputs that are already TF32 values the products
// are exact, so the CPU's float32 twin is the reference up to the order of the additions; on other
// inputs it must differ (the path is taken) by no more than TF32's rounding allows.

struct Tf32Guard {
  Tf32Guard() { gradlens::set_matmul_precision(gradlens::MatmulPrecision::TF32); }
  ~Tf32Guard() { gradlens::set_matmul_precision(gradlens::MatmulPrecision::Float32); }
};

// cvt.rna.tf32.f32 on the host: nearest, ties away from zero, 10 mantissa bits kept.
Floats tf32_values(Floats v) {
  for (float& f : v) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    u = (u + 0x1000u) & 0xffffe000u;
    std::memcpy(&f, &u, sizeof u);
  }
  return v;
}

// Few and small: the emulator runs each mma.sync as 32 warp shuffles.
const std::vector<ConvCase> kTf32ConvCases = {
    {conv(2, 3, 12, 12, 6, 5, 5, 1, 0), true},  // conv1's shape class: 3 input channels
    {conv(1, 6, 7, 7, 70, 3, 3, 1, 1), true},   // two column tiles of output channels, padding
    {conv(2, 5, 7, 13, 3, 3, 2, 2, 1), false},  // stride 2, odd sizes, no bias
    {conv(1, 20, 5, 6, 9, 3, 3, 1, 0), true},   // k of dx = 9 * 3 * 3, not a multiple of 16
};

TEST_F(CudaKernels, Tf32ConvolutionsAreImplicitGemmsOnTensorCores) {
  const Tf32Guard tf32;
  for (const ConvCase& c : kTf32ConvCases) {
    for (const bool relu : {false, true}) {
      Conv2dParams p = c.p;
      p.relu = relu;
      const std::string what = conv_text(p) + (relu ? " relu" : "") + " tf32";
      const Floats x = tf32_values(uniform(p.n * p.c * p.h * p.w, 50));
      const Floats w = tf32_values(uniform(p.k * p.c * p.r * p.s, 51));
      const Floats dy = tf32_values(uniform(p.n * p.k * p.oh * p.ow, 52));
      const Twin fwd = run_twin({{x, w, c.bias ? uniform(p.k, 53) : Floats{}, garbage(dy.size())}},
                                [&](Backend& be, DeviceArrays& d) {
                                  be.conv2d_forward(p, d.f[0], d.f[1], d.f[2], d.f[3]);
                                });
      expect_close(fwd, {3}, reduction(p.c * p.r * p.s + 1), what + " forward");
      Floats y = uniform(dy.size(), 54);
      for (std::size_t i = 0; i < y.size(); i += 5) y[i] = 0.f;
      for (const bool weights : {false, true}) {
        const Twin bwd = run_twin({{x,
                                    w,
                                    y,
                                    dy,
                                    garbage(x.size()),
                                    weights ? garbage(w.size()) : Floats{},
                                    weights ? garbage(p.k) : Floats{}}},
                                  [&](Backend& be, DeviceArrays& d) {
                                    be.conv2d_backward(
                                        p, d.f[0], d.f[1], d.f[2], d.f[3], d.f[4], d.f[5], d.f[6]);
                                  });
        expect_close(bwd, {4}, reduction(p.k * p.r * p.s), what + " dx");
        if (weights) expect_close(bwd, {5, 6}, reduction(p.n * p.oh * p.ow), what + " dw/db");
      }
    }
  }
}

TEST_F(CudaKernels, Tf32LinearIncludingSplitK) {
  const Tf32Guard tf32;
  for (const LinearCase c : std::vector<LinearCase>{{1, 400, 120, true},
                                                    {7, 13, 5, false},
                                                    {33, 129, 65, true},
                                                    {5000, 84, 10, true}}) {  // dw split over k
    const std::string what = "n " + std::to_string(c.n) + " in " + std::to_string(c.in) + " out " +
                             std::to_string(c.out) + " tf32";
    const Floats x = tf32_values(uniform(c.n * c.in, 55));
    const Floats w = tf32_values(uniform(c.out * c.in, 56));
    const Floats dy = tf32_values(uniform(c.n * c.out, 57));
    const Twin fwd =
        run_twin({{x, w, c.bias ? uniform(c.out, 58) : Floats{}, garbage(c.n * c.out)}},
                 [=](Backend& be, DeviceArrays& d) {
                   be.linear_forward(d.f[0], d.f[1], d.f[2], d.f[3], c.n, c.in, c.out);
                 });
    expect_close(fwd, {3}, reduction(c.in + 1), what + " forward");
    const Twin bwd = run_twin(
        {{x, w, dy, garbage(x.size()), garbage(w.size()), garbage(c.out)}},
        [=](Backend& be, DeviceArrays& d) {
          be.linear_backward(d.f[0], d.f[1], d.f[2], d.f[3], d.f[4], d.f[5], c.n, c.in, c.out);
        });
    expect_close(bwd, {3}, reduction(c.out), what + " dx");
    expect_close(bwd, {4, 5}, reduction(c.n), what + " dw/db");
  }
}

TEST_F(CudaKernels, Tf32RoundsItsInputs) {
  // Unrounded inputs: the result moves off float32's by TF32's rounding (2^-11 relative per
  // input), which shows the tensor-core path ran, and by no more than that.
  const Conv2dParams p = conv(4, 3, 32, 32, 6, 5, 5, 1, 0);
  const Arrays in{{uniform(p.n * p.c * p.h * p.w, 59),
                   uniform(p.k * p.c * p.r * p.s, 60),
                   Floats{},
                   garbage(p.n * p.k * p.oh * p.ow)}};
  auto forward = [&](Backend& be, DeviceArrays& d) {
    be.conv2d_forward(p, d.f[0], d.f[1], d.f[2], d.f[3]);
  };
  Twin t;
  {
    const Tf32Guard tf32;
    t = run_twin(in, forward);
  }
  double worst = 0;
  for (std::size_t i = 0; i < t.cpu.f[3].size(); ++i) {
    worst = std::max(worst, std::fabs(double{t.cuda.f[3][i]} - t.cpu.f[3][i]));
  }
  EXPECT_GT(worst, 1e-5) << "TF32 results equal float32's: the tensor-core path did not run";
  expect_close(t, {3}, {0, 2.0 * p.c * p.r * p.s * std::ldexp(1.0, -10)}, "tf32 rounding");
  const Twin float32 = run_twin(in, forward);  // the guard is gone: float32 again
  expect_close(float32, {3}, reduction(p.c * p.r * p.s), "float32 after tf32");
}

// ---------------------------------------------------------------------------------------------
// max_pool2d

constexpr auto pool = gradlens::make_pool2d_params;

std::string pool_text(const Pool2dParams& p) {
  std::ostringstream s;
  s << "x [" << p.n << ", " << p.c << ", " << p.h << ", " << p.w << "] kernel " << p.kernel
    << " stride " << p.stride << " padding " << p.padding;
  return s.str();
}

// Forward on both (values and indices exact), then backward on both from the CPU's indices.
void check_pool(const Pool2dParams& p, const Floats& x, const std::string& what) {
  const i64 in = p.n * p.c * p.h * p.w, out = p.n * p.c * p.oh * p.ow;
  const Twin fwd = run_twin(
      {{x, garbage(out)}, {}, {Int32s(static_cast<std::size_t>(out), -7)}},
      [&](Backend& be, DeviceArrays& d) { be.max_pool2d_forward(p, d.f[0], d.f[1], d.i32[0]); });
  EXPECT_TRUE(close(fwd.cuda.f[1], fwd.cpu.f[1], kExact)) << what << " values";
  EXPECT_TRUE(same(fwd.cuda.i32[0], fwd.cpu.i32[0])) << what << " indices";
  // Overlapping windows send several outputs to one input: dyadic dy makes the sums exact.
  const Twin bwd = run_twin(
      {{dyadic(out, 42), garbage(in)}, {}, {fwd.cpu.i32[0]}},
      [&](Backend& be, DeviceArrays& d) { be.max_pool2d_backward(p, d.f[0], d.i32[0], d.f[1]); });
  EXPECT_TRUE(close(bwd.cuda.f[1], bwd.cpu.f[1], kExact)) << what << " backward";
}

TEST_F(CudaKernels, MaxPool2dWithoutTies) {
  for (const Pool2dParams& p : {pool(4, 6, 28, 28, 2, 2, 0),  // the Net's pool1
                                pool(4, 16, 10, 10, 2, 2, 0),
                                pool(2, 5, 7, 13, 3, 2, 1),  // stride != kernel, padding
                                pool(1, 3, 7, 13, 2, 1, 1),  // overlapping, padding
                                pool(3, 2, 9, 9, 3, 3, 1),
                                pool(2, 3, 8, 8, 4, 4, 2),
                                pool(1, 1, 1, 1, 1, 1, 0),
                                pool(2, 3, 6, 11, 3, 1, 0),
                                pool(2, 3, 7, 9, 2, 2, 0),      // tiling windows, a tail each way
                                pool(1, 2, 10, 8, 3, 3, 0)}) {  // and 3x3: tails of 1 and 2
    check_pool(p, distinct_planes(p.n * p.c, p.h * p.w, 43), pool_text(p));
  }
  const Pool2dParams big = pool(10000, 6, 28, 28, 2, 2, 0);
  if (!suite_fits(big.n * big.c * big.h * big.w)) return;
  check_pool(big, distinct_planes(big.n * big.c, big.h * big.w, 44), pool_text(big));
}

TEST_F(CudaKernels, MaxPool2dTiesAndNegativePadding) {
  // Ties: the first maximum in scan order wins (backend.h), as in PyTorch.
  for (const Pool2dParams& p :
       {pool(2, 3, 7, 13, 3, 1, 1), pool(4, 6, 28, 28, 2, 2, 0), pool(1, 2, 9, 9, 3, 2, 1)}) {
    Floats x = uniform(p.n * p.c * p.h * p.w, 45);
    for (float& v : x) v = v < 0.f ? 0.f : 1.f;
    check_pool(p, x, "ties " + pool_text(p));
    check_pool(p, Floats(x.size(), 0.f), "all equal " + pool_text(p));
  }
  // Every value negative: padding is -inf, not 0, so no index may point outside the image.
  const Pool2dParams p = pool(2, 3, 7, 13, 3, 2, 1);
  Floats x = distinct_planes(p.n * p.c, p.h * p.w, 46);
  for (float& v : x) v = -2.f - std::fabs(v);
  check_pool(p, x, "negative " + pool_text(p));
}

// ---------------------------------------------------------------------------------------------
// softmax, log_softmax, cross_entropy

struct RowsCols {
  i64 rows, cols;
};

const std::vector<RowsCols> kRowsCols = {{1, 10},
                                         {1, 1000},
                                         {4, 10},
                                         {1000, 10},
                                         {3, 1000},
                                         {5, 1},
                                         {1, 1},
                                         {7, 1025},
                                         {2, 100003},
                                         {10000, 10}};

std::string rc_text(RowsCols c) {
  return "rows " + std::to_string(c.rows) + " cols " + std::to_string(c.cols);
}

TEST_F(CudaKernels, SoftmaxAndLogSoftmax) {
  for (const RowsCols c : kRowsCols) {
    if (!suite_fits(c.rows * c.cols)) continue;
    for (float scale : {5.f, 100.f}) {  // +-100: exp overflows unless the row max is subtracted
      const i64 n = c.rows * c.cols;
      const Twin fwd = run_twin({{uniform(n, 47, -scale, scale), garbage(n), garbage(n)}},
                                [=](Backend& be, DeviceArrays& d) {
                                  be.softmax_forward(d.f[0], d.f[1], c.rows, c.cols);
                                  be.log_softmax_forward(d.f[0], d.f[2], c.rows, c.cols);
                                });
      const std::string what = rc_text(c) + " scale " + std::to_string(scale);
      expect_close(fwd, {1, 2}, reduction(c.cols), what);
      // Backward from the CPU's outputs, so it is checked on its own.
      const Twin bwd =
          run_twin({{fwd.cpu.f[1], fwd.cpu.f[2], uniform(n, 48), garbage(n), garbage(n)}},
                   [=](Backend& be, DeviceArrays& d) {
                     be.softmax_backward(d.f[0], d.f[2], d.f[3], c.rows, c.cols);
                     be.log_softmax_backward(d.f[1], d.f[2], d.f[4], c.rows, c.cols);
                   });
      expect_close(bwd, {3, 4}, reduction(c.cols), what + " backward");
    }
  }
}

TEST_F(CudaKernels, CrossEntropyForwardAndBackward) {
  for (const RowsCols c : kRowsCols) {
    if (!suite_fits(c.rows * c.cols)) continue;
    for (float scale : {5.f, 100.f}) {
      const i64 n = c.rows * c.cols;
      const Indices targets = random_indices(c.rows, c.cols, 49);
      const Twin fwd =
          run_twin({{uniform(n, 50, -scale, scale), garbage(n), garbage(1)}, {targets}},
                   [=](Backend& be, DeviceArrays& d) {
                     be.cross_entropy_forward(d.f[0], d.idx[0], d.f[1], d.f[2], c.rows, c.cols);
                   });
      const std::string what = rc_text(c) + " scale " + std::to_string(scale);
      expect_close(fwd, {1}, reduction(c.cols), what + " probs");
      // The loss is a mean of rows terms, each itself a log-sum-exp over cols.
      expect_close(fwd, {2}, reduction(c.rows * c.cols), what + " loss");
      const Twin bwd = run_twin(
          {{fwd.cpu.f[1], {0.7f}, garbage(n)}, {targets}}, [=](Backend& be, DeviceArrays& d) {
            be.cross_entropy_backward(d.f[0], d.idx[0], d.f[1], d.f[2], c.rows, c.cols);
          });
      expect_close(bwd, {2}, kElementwise, what + " backward");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// pick, index_rows

TEST_F(CudaKernels, PickForwardAndBackward) {
  for (const RowsCols c : std::vector<RowsCols>{{1, 10}, {1000, 10}, {5, 1000}, {7, 1}, {1, 1}}) {
    const i64 n = c.rows * c.cols;
    const Twin t = run_twin({{uniform(n, 51), uniform(c.rows, 52), garbage(c.rows), garbage(n)},
                             {random_indices(c.rows, c.cols, 53)}},
                            [=](Backend& be, DeviceArrays& d) {
                              be.pick_forward(d.f[0], d.idx[0], d.f[2], c.rows, c.cols);
                              be.pick_backward(d.f[1], d.idx[0], d.f[3], c.rows, c.cols);
                            });
    expect_close(t, {2, 3}, kExact, rc_text(c));
  }
}

TEST_F(CudaKernels, IndexRowsForwardAndBackwardAccumulateRepeats) {
  struct Case {
    i64 src_rows, row_size;
    Indices index;
  };
  Indices reversed(10);
  std::iota(reversed.rbegin(), reversed.rend(), i64{0});
  const std::vector<Case> cases = {
      {5, 3072, random_indices(50, 5, 54)},  // images, each repeated ~10 times
      {3, 1, Indices(1000, 0)},              // 1000 rows into one: contention
      {8, 5, {1, 1, 6, 3, 6, 6}},            // rows 0, 2, 4, 5 and 7 never picked: zeros
      {10, 7, reversed},
      {1000, 10, random_indices(10000, 1000, 55)},
      {1, 1, {0}},
  };
  for (const Case& c : cases) {
    const i64 count = static_cast<i64>(c.index.size());
    if (!suite_fits(std::max(count, c.src_rows) * c.row_size)) continue;
    const std::string what = "src_rows " + std::to_string(c.src_rows) + " row_size " +
                             std::to_string(c.row_size) + " count " + std::to_string(count);
    const Twin t =
        run_twin({{uniform(c.src_rows * c.row_size, 56),
                   dyadic(count * c.row_size, 57),
                   garbage(count * c.row_size),
                   garbage(c.src_rows * c.row_size)},
                  {c.index}},
                 [&](Backend& be, DeviceArrays& d) {
                   be.index_rows_forward(d.f[0], d.idx[0], d.f[2], count, c.row_size);
                   be.index_rows_backward(d.f[1], d.idx[0], d.f[3], count, c.row_size, c.src_rows);
                 });
    expect_close(t, {2}, kExact, what + " forward");
    expect_close(t, {3}, kExact, what + " backward");
  }
}

// ---------------------------------------------------------------------------------------------
// sgd_update

TEST_F(CudaKernels, SgdUpdateEveryVariant) {
  struct Case {
    const char* name;
    SgdParams p;
    bool has_buffer;
  };
  const auto sgd = [](float momentum, float dampening, float wd, bool nesterov, bool first) {
    SgdParams p;
    p.lr = 0.01f;
    p.momentum = momentum;
    p.dampening = dampening;
    p.weight_decay = wd;
    p.nesterov = nesterov;
    p.first_step = first;
    return p;
  };
  const std::vector<Case> cases = {
      {"plain", sgd(0.f, 0.f, 0.f, false, true), false},
      {"plain, weight decay", sgd(0.f, 0.f, 1e-2f, false, false), false},
      {"momentum, first step", sgd(0.9f, 0.f, 0.f, false, true), true},
      {"momentum", sgd(0.9f, 0.f, 0.f, false, false), true},
      {"nesterov, first step", sgd(0.9f, 0.f, 0.f, true, true), true},
      {"nesterov", sgd(0.9f, 0.f, 0.f, true, false), true},
      {"dampening, first step", sgd(0.9f, 0.1f, 0.f, false, true), true},
      {"dampening", sgd(0.9f, 0.1f, 0.f, false, false), true},
      {"weight decay, momentum", sgd(0.9f, 0.f, 5e-4f, false, false), true},
      {"everything", sgd(0.9f, 0.1f, 5e-4f, true, false), true},
      {"everything, first step", sgd(0.9f, 0.1f, 5e-4f, true, true), true},
  };
  // Relative to the largest value: the momentum buffer can cancel to near 0.
  for (const Case& c : cases) {
    for (i64 n : {i64{1}, i64{7}, i64{48003}, i64{1000003}}) {
      if (!suite_fits(n)) continue;
      // On a first step the old buffer must not be read: NaN there would show.
      Floats buf = c.has_buffer ? (c.p.first_step ? garbage(n) : uniform(n, 58)) : Floats{};
      const Twin t = run_twin(
          {{uniform(n, 59), uniform(n, 60), buf}},
          [&](Backend& be, DeviceArrays& d) { be.sgd_update(c.p, d.f[0], d.f[1], d.f[2], n); });
      expect_close(t, {0, 2}, kElementwise, std::string(c.name) + " n=" + std::to_string(n));
    }
  }
  // Three steps in a row, as training runs them.
  const i64 n = 48003;
  const Twin t =
      run_twin({{uniform(n, 61), uniform(n, 62), garbage(n)}}, [&](Backend& be, DeviceArrays& d) {
        SgdParams p = sgd(0.9f, 0.f, 0.f, false, true);
        be.sgd_update(p, d.f[0], d.f[1], d.f[2], n);
        p.first_step = false;
        be.sgd_update(p, d.f[0], d.f[1], d.f[2], n);
        be.sgd_update(p, d.f[0], d.f[1], d.f[2], n);
      });
  expect_close(t, {0, 2}, {1e-5, 1e-5}, "three steps");
}

// ---------------------------------------------------------------------------------------------
// Views: pointers one float past an allocation (16-byte alignment not guaranteed)

TEST_F(CudaKernels, UnalignedPointers) {
  const bool big = suite_fits(1000003);
  const i64 n = big ? 1000003 : 4099, side = big ? 1000 : 64;  // softmax [side, side] reads x
  const BroadcastParams bp = make_broadcast({big ? 64 : 4, 6, 28, 28}, {6, 1, 1});
  const Conv2dParams cp = conv(4, 3, 32, 32, 6, 5, 5, 1, 0);
  const Twin t = run_twin(
      {{uniform(n, 63),
        garbage(n),
        garbage(n),
        garbage(1),
        uniform(bp.a_numel, 64),
        uniform(bp.b_numel, 65),
        garbage(bp.numel),
        uniform(cp.n * cp.c * cp.h * cp.w, 66),
        uniform(cp.k * cp.c * cp.r * cp.s, 67),
        uniform(cp.k, 68),
        garbage(cp.n * cp.k * cp.oh * cp.ow),
        garbage(4 * 6),
        garbage(side * side)}},
      [&](Backend& be, DeviceArrays& d) {
        be.affine(d.f[0], 2.f, 1.f, d.f[1], n);
        be.relu_forward(d.f[0], d.f[2], n);
        be.sum(d.f[0], n, d.f[3]);
        be.binary_forward(BinaryOp::Mul, bp, d.f[4], d.f[5], d.f[6]);
        be.conv2d_forward(cp, d.f[7], d.f[8], d.f[9], d.f[10]);
        be.linear_forward(d.f[7], d.f[0], d.f[9], d.f[11], 4, 400, 6);  // reads w from x
        be.softmax_forward(d.f[0], d.f[12], side, side);
      },
      /*offset=*/1);
  expect_close(t, {1, 2, 6}, kElementwise, "elementwise");
  expect_close(t, {3}, reduction(n), "sum");
  expect_close(t, {10}, reduction(76), "conv2d");
  expect_close(t, {11}, reduction(401), "linear");
  expect_close(t, {12}, reduction(side), "softmax");
}

}  // namespace
