// The CUDA side of backend_for(): device discovery now; the kernels arrive with the CUDA backend
// issue, until then asking for a cuda tensor is a clear error rather than a silent CPU fallback.
#include <string>

#include "kernels/cuda/check.cuh"
#include "kernels/registry.h"

namespace gradlens::detail {

bool cuda_device_present() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error so later calls are not poisoned
    return false;
  }
  return count > 0;
}

Backend& cuda_backend(int index) {
  if (!cuda_device_present()) {
    throw std::runtime_error("[device] cuda:" + std::to_string(index) +
                             " requested, but no CUDA device is visible on this machine");
  }
  throw std::runtime_error("[device] cuda:" + std::to_string(index) +
                           " is visible, but this build has no CUDA kernels yet");
}

}  // namespace gradlens::detail
