// CpuBackend memory kernels (64-byte aligned host memory, copies, fill, affine y = alpha * x +
// beta) and this variant's entry point, gradlens_cpu_backend_<isa>(): the one symbol the variant's
// object exports (kernels/CMakeLists.txt localizes the rest).
#include "gradlens/kernels/cpu/cpu_backend.h"

#include <algorithm>
#include <cstring>

#include "gradlens/kernels/cpu/common/block_cache.h"
#include "gradlens/kernels/cpu/common/scratch.h"
#include "gradlens/kernels/cpu/common/thread_pool.h"

namespace gradlens::cpu::GRADLENS_CPU_ISA {

std::size_t CpuBackend::available_memory() { return host_available_memory() + block_cache_bytes(); }

void* CpuBackend::allocate(std::size_t bytes) { return block_allocate(bytes); }

void CpuBackend::deallocate(void* ptr) { block_free(ptr); }

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
  // Two roundings (this file is built with -ffp-contract=off), as the CUDA twin, so alpha == 1 or
  // beta == 0 give exactly PyTorch's x + beta or alpha * x.
  thread_pool().parallel_for(0, n, kElementwiseGrain, [=](i64 begin, i64 end) {
    for (i64 i = begin; i < end; ++i) {
      const float scaled = alpha * x[i];
      y[i] = scaled + beta;
    }
  });
}

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA

#define GRADLENS_CPU_ENTRY_NAME(isa) gradlens_cpu_backend_##isa
#define GRADLENS_CPU_ENTRY(isa) GRADLENS_CPU_ENTRY_NAME(isa)

extern "C" gradlens::Backend* GRADLENS_CPU_ENTRY(GRADLENS_CPU_ISA)() {
  static gradlens::cpu::GRADLENS_CPU_ISA::CpuBackend backend;
  return &backend;
}
