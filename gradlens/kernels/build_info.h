// How this copy of gradlens was built, for `gradlens info` and bug reports.
#pragma once

#include <string>

#include "gradlens/export.h"

namespace gradlens {

struct GRADLENS_API BuildInfo {
  std::string version;       // "0.1.0"
  std::string build_type;    // "Release"
  std::string compiler;      // "GNU 12.2.0"
  std::string flags;         // the C++ flags of the build type, plus -march=native if asked for
  std::string cpu_variants;  // "generic avx2 avx512": the CPU kernels compiled in
  std::string cuda;          // "sm_75 sm_90 (nvcc 13.0.48)", "emulated on the CPU" or "off"
};

GRADLENS_API const BuildInfo& build_info();

}  // namespace gradlens
