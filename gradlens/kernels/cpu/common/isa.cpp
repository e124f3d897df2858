// CPU feature detection (cpuid, plus xgetbv: the OS must save the AVX and AVX-512 registers) and
// the choice of the CPU kernels' variant. The variants are reached through the one symbol each
// exports.
#include "gradlens/kernels/cpu/common/isa.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <stdexcept>
#include <vector>

#include "gradlens/kernels/cpu/common/thread_pool.h"
#include "gradlens/kernels/registry.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define GRADLENS_X86 1
#else
#define GRADLENS_X86 0
#endif

extern "C" gradlens::Backend* gradlens_cpu_backend_generic();
#if GRADLENS_CPU_HAS_AVX2
extern "C" gradlens::Backend* gradlens_cpu_backend_avx2();
#endif
#if GRADLENS_CPU_HAS_AVX512
extern "C" gradlens::Backend* gradlens_cpu_backend_avx512();
#endif

namespace gradlens {
namespace cpu {
namespace {

// The features the variants need, in the order `gradlens info` lists them.
enum Feature { kSse2, kSse42, kAvx, kAvx2, kFma, kAvx512f, kAvx512bw, kAvx512vl, kFeatureCount };
constexpr const char* kFeatureNames[kFeatureCount] = {
    "sse2", "sse4.2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl"};
using Features = std::array<bool, kFeatureCount>;

// What each variant needs, indexed by Isa.
constexpr std::initializer_list<Feature> kNeeds[] = {
    {}, {kAvx2, kFma}, {kAvx512f, kAvx512bw, kAvx512vl, kAvx2, kFma}};
constexpr std::string_view kIsaNames[] = {"generic", "avx2", "avx512"};

Features detect() {
  Features f{};
#if GRADLENS_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) == 0) return f;
  f[kSse2] = (d >> 26) & 1;
  f[kSse42] = (c >> 20) & 1;
  const bool osxsave = (c >> 27) & 1;
  std::uint64_t xcr0 = 0;
  if (osxsave) {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (std::uint64_t{hi} << 32) | lo;
  }
  // XCR0: bits 1-2 SSE and AVX state; 5-7 the AVX-512 opmask and upper ZMM state.
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
  f[kAvx] = os_avx && ((c >> 28) & 1);
  f[kFma] = os_avx && ((c >> 12) & 1);
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) != 0) {
    f[kAvx2] = f[kAvx] && ((b >> 5) & 1);
    f[kAvx512f] = os_avx512 && ((b >> 16) & 1);
    f[kAvx512bw] = os_avx512 && ((b >> 30) & 1);
    f[kAvx512vl] = os_avx512 && ((b >> 31) & 1);
  }
#endif
  return f;
}

// The names of the features in `list` whose presence equals `present`, space-separated.
std::string feature_names(std::initializer_list<Feature> list, const Features& f, bool present) {
  std::string out;
  for (Feature feature : list) {
    if (f[feature] != present) continue;
    if (!out.empty()) out += ' ';
    out += kFeatureNames[feature];
  }
  return out;
}

const Features& features() {
  static const Features f = detect();
  return f;
}

Backend* compiled_backend(Isa isa) {
  switch (isa) {
    case Isa::generic:
      return gradlens_cpu_backend_generic();
    case Isa::avx2:
#if GRADLENS_CPU_HAS_AVX2
      return gradlens_cpu_backend_avx2();
#else
      return nullptr;
#endif
    case Isa::avx512:
#if GRADLENS_CPU_HAS_AVX512
      return gradlens_cpu_backend_avx512();
#else
      return nullptr;
#endif
  }
  return nullptr;
}

Isa choose() {
  const char* forced = std::getenv("GRADLENS_CPU");
  if (forced == nullptr || *forced == '\0') {
    Isa best = Isa::generic;
    for (Isa isa : kAllIsas) {
      if (isa_compiled(isa) && isa_supported(isa)) best = isa;
    }
    return best;
  }
  for (Isa isa : kAllIsas) {
    if (isa_name(isa) != forced) continue;
    if (!isa_compiled(isa)) {
      throw std::runtime_error("GRADLENS_CPU=" + std::string(forced) +
                               ": this build has no such variant (built for " +
                               std::string(isa_name(Isa::generic)) + " only)");
    }
    if (!isa_supported(isa)) {
      throw std::runtime_error("GRADLENS_CPU=" + std::string(forced) + ": this CPU (" +
                               cpu_brand() + ") lacks " + missing_features(isa) +
                               "; it has: " + cpu_features());
    }
    return isa;
  }
  throw std::runtime_error("GRADLENS_CPU=" + std::string(forced) +
                           ": unknown variant (expected generic, avx2 or avx512)");
}

}  // namespace

std::string_view isa_name(Isa isa) { return kIsaNames[static_cast<int>(isa)]; }

bool isa_compiled(Isa isa) { return compiled_backend(isa) != nullptr; }

bool isa_supported(Isa isa) { return missing_features(isa).empty(); }

std::string missing_features(Isa isa) {
  return feature_names(kNeeds[static_cast<int>(isa)], features(), /*present=*/false);
}

Isa active_isa() {
  static const Isa isa = choose();  // a throw leaves it unset: the next call throws again
  return isa;
}

Backend& isa_backend(Isa isa) {
  Backend* backend = compiled_backend(isa);
  if (backend == nullptr) {
    throw std::runtime_error("[cpu] the " + std::string(isa_name(isa)) +
                             " kernels are not compiled into this build");
  }
  return *backend;
}

std::string cpu_brand() {
#if GRADLENS_X86
  unsigned regs[12] = {};
  unsigned max_leaf = __get_cpuid_max(0x80000000u, nullptr);
  if (max_leaf >= 0x80000004u) {
    for (unsigned i = 0; i < 3; ++i) {
      __get_cpuid(
          0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    }
    char text[49] = {};
    std::memcpy(text, regs, 48);
    std::string brand(text);
    const auto first = brand.find_first_not_of(' ');
    const auto last = brand.find_last_not_of(' ');
    if (first != std::string::npos) return brand.substr(first, last - first + 1);
  }
#endif
  return "unknown";
}

std::string cpu_features() {
  const std::string out = feature_names(
      {kSse2, kSse42, kAvx, kAvx2, kFma, kAvx512f, kAvx512bw, kAvx512vl}, features(), true);
  return out.empty() ? "none" : out;
}

}  // namespace cpu

namespace detail {

Backend& cpu_backend() {
  static Backend& backend = cpu::isa_backend(cpu::active_isa());
  return backend;
}

}  // namespace detail

void set_num_threads(int threads) { cpu::thread_pool().set_num_threads(threads); }

int num_threads() { return cpu::thread_pool().num_threads(); }

void parallel_tasks(std::int64_t count, const std::function<void(std::int64_t)>& fn) {
  std::vector<std::exception_ptr> errors(
      static_cast<std::size_t>(std::max<std::int64_t>(count, 0)));
  cpu::thread_pool().parallel_for(0, count, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      try {
        fn(i);
      } catch (...) {
        errors[static_cast<std::size_t>(i)] = std::current_exception();
      }
    }
  });
  for (const auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

}  // namespace gradlens
