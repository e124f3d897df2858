// Stand-in for the CUDA backend in builds without nvcc: cuda is never available.
#include <stdexcept>

#include "gradlens/kernels/registry.h"

namespace gradlens::detail {

Backend& cuda_backend(int index) {
  throw std::runtime_error("[device] cuda:" + std::to_string(index) +
                           " requested, but gradlens was built without CUDA "
                           "(reconfigure with nvcc on PATH or -DGRADLENS_CUDA=ON)");
}

bool cuda_device_present() { return false; }

std::vector<CudaDeviceInfo> cuda_devices(std::string* why, std::string* versions) {
  *why = "built without CUDA (no nvcc at configure time, or -DGRADLENS_CUDA=OFF)";
  versions->clear();
  return {};
}

}  // namespace gradlens::detail
