// The ISA variants of the CPU kernels against the generic one on the Net's own shapes (3->6 and
// 6->16 5x5 convolutions, the 400->120->84->10 linear layers, batch 1 to 1000), with ReLU at 0 and
// the max-pool first-maximum rule exact; the AVX-512 variant against its AVX2-halves build bit for
// bit; and the dispatcher's choice.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "gradlens/kernels/backend.h"
#include "gradlens/kernels/cpu/common/isa.h"
#include "tests/testing.h"

namespace {

using gradlens::Backend;
using gradlens::Conv2dParams;
using gradlens::i64;
using gradlens::Pool2dParams;
using Floats = std::vector<float>;

using gradlens::testing::random_vector;

// Every output of one variant's kernels on the Net's layers, in a fixed order.
struct Outputs {
  std::vector<std::pair<std::string, Floats>> tensors;
  std::vector<std::int32_t> pool_indices;
};

void add_conv(Backend& be, Outputs& out, i64 n, i64 c, i64 k, i64 hw) {
  const Conv2dParams p{.n = n,
                       .c = c,
                       .h = hw,
                       .w = hw,
                       .k = k,
                       .r = 5,
                       .s = 5,
                       .stride = 1,
                       .padding = 0,
                       .oh = hw - 4,
                       .ow = hw - 4};
  const auto seed = static_cast<std::uint32_t>(n * 100 + c);
  const Floats x = random_vector(n * c * hw * hw, seed), w = random_vector(k * c * 25, seed + 1);
  const Floats b = random_vector(k, seed + 2), dy = random_vector(n * k * p.oh * p.ow, seed + 3);
  Floats y(dy.size()), dx(x.size()), dw(w.size()), db(b.size());
  be.conv2d_forward(p, x.data(), w.data(), b.data(), y.data());
  be.conv2d_backward(p, x.data(), w.data(), nullptr, dy.data(), dx.data(), dw.data(), db.data());
  const std::string name =
      "conv " + std::to_string(c) + "->" + std::to_string(k) + " batch " + std::to_string(n);
  out.tensors.push_back({name + " y", y});
  out.tensors.push_back({name + " dx", dx});
  out.tensors.push_back({name + " dw", dw});
  out.tensors.push_back({name + " db", db});
}

void add_linear(Backend& be, Outputs& out, i64 n, i64 in, i64 features) {
  const auto seed = static_cast<std::uint32_t>(n * 1000 + in);
  const Floats x = random_vector(n * in, seed), w = random_vector(features * in, seed + 1);
  const Floats b = random_vector(features, seed + 2), dy = random_vector(n * features, seed + 3);
  Floats y(dy.size()), dx(x.size()), dw(w.size()), db(b.size());
  be.linear_forward(x.data(), w.data(), b.data(), y.data(), n, in, features);
  be.linear_backward(
      x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data(), n, in, features);
  const std::string name = "linear " + std::to_string(in) + "->" + std::to_string(features) +
                           " batch " + std::to_string(n);
  out.tensors.push_back({name + " y", y});
  out.tensors.push_back({name + " dx", dx});
  out.tensors.push_back({name + " dw", dw});
  out.tensors.push_back({name + " db", db});
}

Outputs run_net_layers(Backend& be) {
  Outputs out;
  for (i64 n : {1, 4, 37}) {
    add_conv(be, out, n, 3, 6, 32);
    add_conv(be, out, n, 6, 16, 14);
  }
  for (i64 n : {1, 4, 37, 1000}) {
    add_linear(be, out, n, 400, 120);
    add_linear(be, out, n, 120, 84);
    add_linear(be, out, n, 84, 10);
  }
  // ReLU at +-0, NaN and the smallest values either side of 0.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float tiny = std::numeric_limits<float>::denorm_min();
  Floats x = random_vector(1001, 7);
  const Floats specials = {0.f, -0.f, nan, tiny, -tiny, 1.f, -1.f};
  for (std::size_t i = 0; i < specials.size(); ++i) x[i * 97] = specials[i];
  Floats y(x.size()), dx(x.size());
  const Floats dy = random_vector(1001, 8);
  be.relu_forward(x.data(), y.data(), static_cast<i64>(x.size()));
  be.relu_backward(x.data(), dy.data(), dx.data(), static_cast<i64>(x.size()));
  out.tensors.push_back({"relu y", y});
  out.tensors.push_back({"relu dx", dx});
  // 2x2 max-pool over values with many exact ties (multiples of 0.5) and a NaN.
  const Pool2dParams p{
      .n = 3, .c = 6, .h = 28, .w = 28, .kernel = 2, .stride = 2, .padding = 0, .oh = 14, .ow = 14};
  Floats px = random_vector(3 * 6 * 28 * 28, 9);
  for (float& v : px) v = std::round(v * 2.f) / 2.f;
  px[123] = nan;
  Floats py(3 * 6 * 14 * 14), pdx(px.size());
  const Floats pdy = random_vector(static_cast<i64>(py.size()), 10);
  out.pool_indices.resize(py.size());
  be.max_pool2d_forward(p, px.data(), py.data(), out.pool_indices.data());
  be.max_pool2d_backward(p, pdy.data(), out.pool_indices.data(), pdx.data());
  out.tensors.push_back({"max_pool y", py});
  out.tensors.push_back({"max_pool dx", pdx});
  return out;
}

bool exact_kernel(const std::string& name) {
  return name.rfind("relu", 0) == 0 || name.rfind("max_pool", 0) == 0;
}

// Bitwise equal (NaN equal to NaN) or, for the GEMM-like kernels, within float rounding of sums.
::testing::AssertionResult same(const std::string& name,
                                const Floats& a,
                                const Floats& b,
                                bool bitwise) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << name << ": sizes differ";
  double scale = 1.0;
  for (float v : b) scale = std::max(scale, static_cast<double>(std::abs(v)));
  for (std::size_t i = 0; i < a.size(); ++i) {
    const bool both_nan = std::isnan(a[i]) && std::isnan(b[i]);
    if (both_nan) continue;
    const bool ok = bitwise || exact_kernel(name)
                        ? std::memcmp(&a[i], &b[i], sizeof(float)) == 0
                        : std::abs(static_cast<double>(a[i]) - b[i]) <= 2e-5 * scale;
    if (!ok) {
      return ::testing::AssertionFailure()
             << name << "[" << i << "]: " << a[i] << " vs " << b[i] << " (scale " << scale << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

Backend* variant_or_skip(const std::string& name, std::string* why) {
  return gradlens::testing::cpu_variant(name, why);
}

class CpuVariants : public ::testing::TestWithParam<std::string> {};

TEST_P(CpuVariants, NetLayersMatchTheGenericVariant) {
  std::string why;
  Backend* variant = variant_or_skip(GetParam(), &why);
  if (variant == nullptr) GTEST_SKIP() << GetParam() << ": " << why;
  Backend* generic = variant_or_skip("generic", &why);
  ASSERT_NE(generic, nullptr) << why;
  const Outputs expected = run_net_layers(*generic), actual = run_net_layers(*variant);
  ASSERT_EQ(actual.tensors.size(), expected.tensors.size());
  for (std::size_t t = 0; t < actual.tensors.size(); ++t) {
    EXPECT_TRUE(same(actual.tensors[t].first,
                     actual.tensors[t].second,
                     expected.tensors[t].second,
                     /*bitwise=*/false));
  }
  EXPECT_EQ(actual.pool_indices, expected.pool_indices) << "max-pool: first maximum wins";
}

INSTANTIATE_TEST_SUITE_P(Variants,
                         CpuVariants,
                         ::testing::Values("avx2", "avx512", "avx512_on_avx2"),
                         [](const auto& info) { return info.param; });

TEST(CpuVariantsAvx512, MatchesItsAvx2HalvesBitForBit) {
  // Same tiles, same FMA order, the same reduction tree: only the registers differ.
  std::string why;
  Backend* avx512 = variant_or_skip("avx512", &why);
  if (avx512 == nullptr) GTEST_SKIP() << "avx512: " << why;
  Backend* halves = variant_or_skip("avx512_on_avx2", &why);
  ASSERT_NE(halves, nullptr) << why;
  const Outputs a = run_net_layers(*avx512), b = run_net_layers(*halves);
  for (std::size_t t = 0; t < a.tensors.size(); ++t) {
    EXPECT_TRUE(same(a.tensors[t].first, a.tensors[t].second, b.tensors[t].second, true));
  }
}

TEST(CpuDispatch, PicksTheBestSupportedVariantUnlessForced) {
  using gradlens::cpu::Isa;
  const char* forced = std::getenv("GRADLENS_CPU");
  if (forced != nullptr && *forced != '\0') {
    EXPECT_EQ(gradlens::cpu::isa_name(gradlens::cpu::active_isa()), forced);
    return;
  }
  Isa best = Isa::generic;
  for (Isa isa : gradlens::cpu::kAllIsas) {
    if (gradlens::cpu::isa_compiled(isa) && gradlens::cpu::isa_supported(isa)) best = isa;
  }
  EXPECT_EQ(gradlens::cpu::active_isa(), best);
  EXPECT_EQ(&gradlens::backend_for(gradlens::kCPU), &gradlens::cpu::isa_backend(best));
#if defined(__x86_64__)
  // Every variant is compiled on every x86-64 machine, whatever its CPU.
  for (Isa isa : gradlens::cpu::kAllIsas) EXPECT_TRUE(gradlens::cpu::isa_compiled(isa));
#endif
}

}  // namespace
