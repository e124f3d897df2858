// Internal: the CUDA backend as a plugin. The nvcc-built kernels live in their own shared library,
// libgradlens_cuda.so, which exports one C function handing the library this table; cuda/loader.cpp
// opens it when a CUDA device is first asked for, so a CUDA-enabled gradlens starts and runs on the
// CPU where neither the CUDA runtime nor a driver is installed.
#pragma once

#include <string>
#include <vector>

#include "gradlens/kernels/precision.h"
#include "gradlens/kernels/registry.h"

namespace gradlens::detail {

// Raised whenever the table or the types it passes change: a plugin from another build is refused.
inline constexpr int kCudaPluginAbi = 1;
inline constexpr const char* kCudaPluginFile = "libgradlens_cuda.so";
inline constexpr const char* kCudaPluginSymbol = "gradlens_cuda_plugin";

/// What the plugin needs from the library it is loaded into (state that must exist once).
struct CudaPluginHost {
  int abi;
  const char* version;
  MatmulPrecision (*matmul_precision)();
};

/// The three entry points of registry.h, implemented by the plugin.
struct CudaPlugin {
  int abi;
  const char* version;
  Backend& (*backend)(int index);
  bool (*device_present)();
  std::vector<CudaDeviceInfo> (*devices)(std::string* why, std::string* versions);
};

using CudaPluginEntry = const CudaPlugin* (*)(const CudaPluginHost* host);

}  // namespace gradlens::detail
