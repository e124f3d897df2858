// Internal: where backend_for() finds each backend. cuda/no_cuda.cpp stands in for CUDA when the
// build has none.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "gradlens/kernels/backend.h"

namespace gradlens::detail {

Backend& cpu_backend();
Backend& cuda_backend(int index);  // throws std::runtime_error without CUDA or a GPU
bool cuda_device_present();

struct CudaDeviceInfo {
  std::string name;
  int major = 0, minor = 0;  // compute capability
  std::size_t total_memory = 0;
  int multiprocessors = 0;
};
/// The visible CUDA devices, and the driver and runtime versions ("13.0"); where there are none,
/// `why` says why (built without CUDA, no driver, no device).
std::vector<CudaDeviceInfo> cuda_devices(std::string* why, std::string* versions);

}  // namespace gradlens::detail
