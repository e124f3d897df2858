// Which ISA variant of the CPU kernels runs: every build compiles kernels/cpu/ once per ISA
// (generic x86-64, AVX2+FMA, AVX-512F/BW/VL), and the best one this CPU and OS support is picked
// once, at the first CPU kernel call. GRADLENS_CPU=generic|avx2|avx512 forces one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "gradlens/kernels/backend.h"

namespace gradlens::cpu {

enum class Isa { generic, avx2, avx512 };

inline constexpr Isa kAllIsas[] = {Isa::generic, Isa::avx2, Isa::avx512};

/// "generic", "avx2", "avx512": GRADLENS_CPU's values.
std::string_view isa_name(Isa isa);

/// Whether this build holds the variant (generic always; the others on x86-64 builds).
bool isa_compiled(Isa isa);

/// Whether this CPU and OS can run the variant (cpuid, and xgetbv for the register state).
bool isa_supported(Isa isa);

/// The CPU features a variant needs that this machine lacks ("avx512bw avx512vl"); empty if none.
std::string missing_features(Isa isa);

/// The variant in use: GRADLENS_CPU's, else the best compiled and supported one. Throws
/// std::runtime_error, one line, when GRADLENS_CPU names an unknown or unsupported variant.
Isa active_isa();

/// The CPU backend of one compiled variant (throws if not compiled). Calling its kernels on a CPU
/// that does not support it dies with an illegal instruction: check isa_supported first.
Backend& isa_backend(Isa isa);

/// The CPU's brand string ("AMD EPYC 9R14 96-Core Processor"), or "unknown".
std::string cpu_brand();

/// The SIMD features found on this CPU, space-separated ("sse2 avx avx2 fma avx512f ...").
std::string cpu_features();

}  // namespace gradlens::cpu
