// Stand-in for the CUDA backend in builds without nvcc: cuda is never available.
#include <stdexcept>

#include "kernels/registry.h"

namespace gradlens::detail {

Backend& cuda_backend(int index) {
  throw std::runtime_error("[device] cuda:" + std::to_string(index) +
                           " requested, but gradlens was built without CUDA "
                           "(reconfigure with nvcc on PATH or -DGRADLENS_CUDA=ON)");
}

bool cuda_device_present() { return false; }

}  // namespace gradlens::detail
