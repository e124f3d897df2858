// The build facts CMake passes in as definitions (kernels/CMakeLists.txt).
#include "gradlens/kernels/build_info.h"

namespace gradlens {

const BuildInfo& build_info() {
  static const BuildInfo info{GRADLENS_BUILD_VERSION,
                              GRADLENS_BUILD_TYPE,
                              GRADLENS_BUILD_COMPILER,
                              GRADLENS_BUILD_FLAGS,
                              GRADLENS_BUILD_CPU_VARIANTS,
                              GRADLENS_BUILD_CUDA};
  return info;
}

}  // namespace gradlens
