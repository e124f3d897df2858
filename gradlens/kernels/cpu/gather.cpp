// gather: y[i] = x[index[i]], or fill where index[i] < 0 (a padded position).
#include "gradlens/kernels/cpu/common/thread_pool.h"
#include "gradlens/kernels/cpu/cpu_backend.h"

namespace gradlens::cpu::GRADLENS_CPU_ISA {

void CpuBackend::gather(const float* x, const i64* index, float fill, float* y, i64 n) {
  thread_pool().parallel_for(0, n, kElementwiseGrain, [=](i64 begin, i64 end) {
    for (i64 i = begin; i < end; ++i) y[i] = index[i] >= 0 ? x[index[i]] : fill;
  });
}

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA
