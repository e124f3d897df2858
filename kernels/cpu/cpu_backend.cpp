// CpuBackend memory kernels (64-byte aligned host memory, copies, fill, affine y = alpha * x +
// beta), the process-wide instance and the thread-count controls.
#include "kernels/cpu/cpu_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>

#include "kernels/cpu/scratch.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/registry.h"

namespace gradlens {
namespace cpu {

void* aligned_allocate(std::size_t bytes) {
  // aligned_alloc wants a multiple of the alignment; 0 bytes still gets a unique pointer.
  const std::size_t rounded = std::max<std::size_t>((bytes + kAlignment - 1) / kAlignment, 1);
  void* ptr = std::aligned_alloc(kAlignment, rounded * kAlignment);
  if (ptr == nullptr) {
    throw OutOfMemoryError("[cpu] out of memory allocating " + std::to_string(bytes) + " bytes");
  }
  return ptr;
}

void aligned_free(void* ptr) { std::free(ptr); }

void ScratchBuffer::grow(std::size_t bytes) {
  // Grow by at least 1.5x so a slowly rising batch size does not reallocate every call.
  const std::size_t capacity = std::max(bytes, capacity_ + capacity_ / 2);
  void* fresh = aligned_allocate(capacity);
  aligned_free(data_);
  data_ = fresh;
  capacity_ = capacity;
}

void ScratchBuffer::poison(std::size_t bytes) {
  if (bytes != 0) std::memset(data_, 0xff, bytes);  // all-ones floats and doubles are NaN
}

std::size_t CpuBackend::available_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  std::size_t kib = 0;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return std::size_t{2} << 30;  // no /proc: assume 2 GiB
}

void* CpuBackend::allocate(std::size_t bytes) { return aligned_allocate(bytes); }

void CpuBackend::deallocate(void* ptr) { aligned_free(ptr); }

void CpuBackend::copy(void* dst, const void* src, std::size_t bytes) {
  if (bytes != 0 && dst != src) std::memcpy(dst, src, bytes);
}

void CpuBackend::copy_from_host(void* dst, const void* host_src, std::size_t bytes) {
  copy(dst, host_src, bytes);
}

void CpuBackend::copy_to_host(void* host_dst, const void* src, std::size_t bytes) {
  copy(host_dst, src, bytes);
}

void CpuBackend::fill(float* y, float value, i64 n) {
  thread_pool().parallel_for(
      0, n, kElementwiseGrain, [=](i64 begin, i64 end) { std::fill(y + begin, y + end, value); });
}

void CpuBackend::affine(const float* x, float alpha, float beta, float* y, i64 n) {
  // Two roundings (ISO C++ mode: GCC does not contract to an FMA), so alpha == 1 or beta == 0
  // give exactly PyTorch's x + beta or alpha * x.
  thread_pool().parallel_for(0, n, kElementwiseGrain, [=](i64 begin, i64 end) {
    for (i64 i = begin; i < end; ++i) {
      const float scaled = alpha * x[i];
      y[i] = scaled + beta;
    }
  });
}

}  // namespace cpu

namespace detail {

Backend& cpu_backend() {
  static cpu::CpuBackend backend;
  return backend;
}

}  // namespace detail

void set_num_threads(int threads) { cpu::thread_pool().set_num_threads(threads); }

int num_threads() { return cpu::thread_pool().num_threads(); }

}  // namespace gradlens
