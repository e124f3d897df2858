// The CUDA side of backend_for(): device discovery, one CudaBackend per device (created on first
// use, never destroyed, so tensors freed during static destruction still find it), memory and
// copies on the device's stream, and the after-launch check.
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gradlens/kernels/cuda/check.cuh"
#include "gradlens/kernels/cuda/cuda_backend.cuh"
#include "gradlens/kernels/cuda/launch.cuh"
#include "gradlens/kernels/registry.h"

namespace gradlens {
namespace cuda {

namespace {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the "no device" error so later calls are not poisoned
    return 0;
  }
  return count;
}

bool sync_after_launch() {
  static const bool sync = [] {
    const char* env = std::getenv("GRADLENS_CUDA_SYNC");
    return env != nullptr && std::string(env) == "1";
  }();
  return sync;
}

}  // namespace

void check_launch(cudaStream_t stream, const char* op, std::initializer_list<i64> sizes) {
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess && sync_after_launch()) err = cudaStreamSynchronize(stream);
  if (err == cudaSuccess) return;
  std::string shape;
  for (i64 s : sizes) shape += (shape.empty() ? "" : ", ") + std::to_string(s);
  throw std::runtime_error(std::string("[cuda] ") + op + " [" + shape +
                           "] failed: " + cudaGetErrorString(err));
}

CudaBackend::CudaBackend(int index)
    : index_(index), multi_device_(device_count() > 1), allocator_(index) {
  GRADLENS_CUDA_CHECK(cudaSetDevice(index));
  GRADLENS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

void* CudaBackend::allocate(std::size_t bytes) { return allocator_.allocate(bytes); }

void CudaBackend::deallocate(void* ptr) { allocator_.deallocate(ptr); }

void CudaBackend::copy(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0 || dst == src) return;
  GRADLENS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
}

void CudaBackend::copy_from_host(void* dst, const void* host_src, std::size_t bytes) {
  if (bytes == 0) return;
  // From pageable memory the call returns once the source is staged: the caller may free it.
  GRADLENS_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream()));
}

void CudaBackend::copy_to_host(void* host_dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  GRADLENS_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream()));
  // Also where an asynchronous kernel fault surfaces: the error names this copy's size.
  const cudaError_t err = cudaStreamSynchronize(stream_);
  if (err != cudaSuccess) {
    throw std::runtime_error(
        "[cuda] copy_to_host of " + std::to_string(bytes) +
        " bytes: an earlier kernel or copy failed: " + cudaGetErrorString(err) +
        " (GRADLENS_CUDA_SYNC=1 names the kernel that failed)");
  }
}

void CudaBackend::synchronize() { GRADLENS_CUDA_CHECK(cudaStreamSynchronize(stream())); }

std::size_t CudaBackend::available_memory() {
  std::size_t free_bytes = 0, total_bytes = 0;
  GRADLENS_CUDA_CHECK(cudaSetDevice(index_));
  GRADLENS_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return free_bytes + allocator_.cached_bytes();
}

}  // namespace cuda

namespace detail {

bool cuda_device_present() { return cuda::device_count() > 0; }

std::vector<CudaDeviceInfo> cuda_devices(std::string* why, std::string* versions) {
  auto version = [](int v) {
    return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
  };
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  *versions = "driver " + (driver > 0 ? version(driver) : std::string("none")) + ", runtime " +
              version(runtime);
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    *why = driver == 0 ? std::string("no NVIDIA driver on this machine")
                       : std::string("no CUDA device visible: ") + cudaGetErrorString(err);
    return {};
  }
  std::vector<CudaDeviceInfo> devices;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    devices.push_back({prop.name,
                       prop.major,
                       prop.minor,
                       static_cast<std::size_t>(prop.totalGlobalMem),
                       prop.multiProcessorCount});
  }
  if (devices.empty()) *why = "no CUDA device visible";
  return devices;
}

Backend& cuda_backend(int index) {
  static std::mutex mutex;
  // Leaked on purpose, see the file comment; the table too, so that the backends stay reachable
  // after static destruction (a leak checker sees them as held, not lost).
  static std::vector<cuda::CudaBackend*>& backends = *new std::vector<cuda::CudaBackend*>();
  const int count = cuda::device_count();
  if (count == 0) {
    throw std::runtime_error("[device] cuda:" + std::to_string(index) +
                             " requested, but no CUDA device is visible on this machine");
  }
  if (index < 0 || index >= count) {
    throw std::runtime_error("[device] cuda:" + std::to_string(index) + " requested, but only " +
                             std::to_string(count) + " CUDA device(s) are visible");
  }
  std::lock_guard<std::mutex> lock(mutex);
  if (backends.empty()) backends.resize(static_cast<std::size_t>(count), nullptr);
  auto& slot = backends[static_cast<std::size_t>(index)];
  if (slot == nullptr) slot = new cuda::CudaBackend(index);
  return *slot;
}

}  // namespace detail
}  // namespace gradlens
