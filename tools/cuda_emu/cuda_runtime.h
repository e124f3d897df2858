// A CPU stand-in for the CUDA runtime and device built-ins, so that the .cu kernels (rewritten by
// transform.py: launches become emu::Launch calls) run on a machine without a GPU. Every CUDA
// thread of a block is a fiber; __syncthreads() and the warp shuffles are real barriers between
// them, and a barrier that not every thread reaches is reported as an error, not a hang. This
// checks the kernels' index arithmetic and synchronisation against their CPU twins (under ASan,
// their memory accesses too); it says nothing about speed. Only the runtime calls gradlens uses.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

struct alignas(16) float4 {
  float x, y, z, w;
};

using cudaError_t = int;
inline constexpr cudaError_t cudaSuccess = 0;
inline constexpr cudaError_t cudaErrorMemoryAllocation = 2;
inline constexpr cudaError_t cudaErrorInvalidValue = 1;
inline constexpr cudaError_t cudaErrorLaunchFailure = 719;
using cudaStream_t = struct EmuStream*;
enum cudaMemcpyKind {
  cudaMemcpyHostToHost,
  cudaMemcpyHostToDevice,
  cudaMemcpyDeviceToHost,
  cudaMemcpyDeviceToDevice
};
inline constexpr unsigned cudaStreamNonBlocking = 1;

struct cudaDeviceProp {
  char name[256];
  int major, minor;
  std::size_t totalGlobalMem;
  int multiProcessorCount;
};

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaMalloc(void** ptr, std::size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpyAsync(
    void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes);
const char* cudaGetErrorString(cudaError_t error);

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
// Static __shared__ arrays are rewritten by transform.py into emu::block_shared (poisoned per
// block).
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

namespace emu {

/// The calling fiber's coordinates (valid inside a kernel only).
const dim3& thread_idx();
const dim3& block_idx();
const dim3& block_dim();
const dim3& grid_dim();
void sync_block();
float shfl(float value, int src_lane_or_minus_one_for_self);
int lane();
/// The launch's dynamic shared memory (extern __shared__), zero bytes unless asked for.
void* dynamic_shared_bytes();
template <class T>
T* dynamic_shared() {
  return static_cast<T*>(dynamic_shared_bytes());
}
/// A static __shared__ declaration's storage in the running block (`tag` tells declarations
/// apart). Like all shared memory it is filled with NaN bytes when each block starts, so a kernel
/// that reads shared memory it never wrote computes NaN instead of a stale right answer.
void* block_shared_bytes(const void* tag, std::size_t bytes);
template <class T>
T& block_shared(const void* tag) {
  return *static_cast<T*>(block_shared_bytes(tag, sizeof(T)));
}

// The launch itself: runs body once per CUDA thread, block after block.
void run_grid(dim3 grid, dim3 block, std::size_t shared, const std::function<void()>& body);

struct Launch {
  dim3 grid, block;
  std::size_t shared = 0;
  Launch(dim3 g, dim3 b, std::size_t s = 0, cudaStream_t = nullptr)
      : grid(g), block(b), shared(s) {}
  template <class Kernel, class... Args>
  void run(Kernel kernel, Args... args) {
    run_grid(grid, block, shared, [&] { kernel(args...); });
  }
};

}  // namespace emu

#define threadIdx (::emu::thread_idx())
#define blockIdx (::emu::block_idx())
#define blockDim (::emu::block_dim())
#define gridDim (::emu::grid_dim())

inline void __syncthreads() { ::emu::sync_block(); }
inline float __shfl_down_sync(unsigned, float v, int offset) {
  const int src = ::emu::lane() + offset;
  return ::emu::shfl(v, src < 32 ? src : -1);
}
inline float __shfl_xor_sync(unsigned, float v, int mask) {
  return ::emu::shfl(v, ::emu::lane() ^ mask);
}
inline float __shfl_sync(unsigned, float v, int src_lane) { return ::emu::shfl(v, src_lane & 31); }
inline unsigned __float_as_uint(float v) {
  unsigned u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
using std::isnan;
using std::max;
using std::min;
