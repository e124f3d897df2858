// The entry point of libgradlens_cuda.so (cuda/plugin.h): everything else in it is hidden.
#include "gradlens/kernels/cuda/plugin.h"

namespace gradlens {

namespace {
const detail::CudaPluginHost* host = nullptr;
}  // namespace

// The precision is the loading library's setting, not a copy of it in the plugin.
MatmulPrecision matmul_precision() { return host->matmul_precision(); }

}  // namespace gradlens

extern "C" __attribute__((visibility("default"))) const gradlens::detail::CudaPlugin*
gradlens_cuda_plugin(const gradlens::detail::CudaPluginHost* loader) {
  using namespace gradlens::detail;
  static const CudaPlugin table{
      kCudaPluginAbi, GRADLENS_BUILD_VERSION, &cuda_backend, &cuda_device_present, &cuda_devices};
  gradlens::host = loader;
  return &table;
}
