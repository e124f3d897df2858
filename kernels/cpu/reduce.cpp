// sum_dim: y[o, i] = sum_d x[o, d, i], each output accumulated in double in a fixed order.
// sum: y[0] = sum_i x[i], accumulated in double over fixed blocks whose partials are added in
// order, so the result does not depend on the thread count.
#include <algorithm>

#include "kernels/cpu/common/scratch.h"
#include "kernels/cpu/common/thread_pool.h"
#include "kernels/cpu/cpu_backend.h"

namespace gradlens::cpu::GRADLENS_CPU_ISA {
namespace {

constexpr i64 kSumBlock = i64{1} << 16;

}  // namespace

double sum_double(const float* x, i64 n) {
  // Eight independent accumulators: vectorizable without reassociating any one of them.
  double acc[8] = {};
  i64 i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += static_cast<double>(x[i + j]);
  }
  for (; i < n; ++i) acc[0] += static_cast<double>(x[i]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

void CpuBackend::sum(const float* x, i64 n, float* y) {
  const i64 blocks = (n + kSumBlock - 1) / kSumBlock;
  if (blocks <= 1) {
    y[0] = static_cast<float>(sum_double(x, n));
    return;
  }
  thread_local ScratchBuffer scratch;
  double* partial = scratch.get<double>(blocks);
  thread_pool().parallel_for(0, blocks, 1, [=](i64 begin, i64 end) {
    for (i64 k = begin; k < end; ++k) {
      const i64 lo = k * kSumBlock;
      partial[k] = sum_double(x + lo, std::min(kSumBlock, n - lo));
    }
  });
  double total = 0.0;
  for (i64 k = 0; k < blocks; ++k) total += partial[k];
  y[0] = static_cast<float>(total);
}

void CpuBackend::sum_dim(const float* x, i64 outer, i64 size, i64 inner, float* y) {
  thread_pool().parallel_for(0,
                             outer,
                             std::max<i64>(1, kElementwiseGrain / std::max<i64>(1, size * inner)),
                             [=](i64 begin, i64 end) {
                               thread_local ScratchBuffer scratch;
                               double* acc = scratch.get<double>(inner);
                               for (i64 o = begin; o < end; ++o) {
                                 if (inner == 1) {  // a row sum: interleaved partials
                                   y[o] = static_cast<float>(sum_double(x + o * size, size));
                                   continue;
                                 }
                                 std::fill(acc, acc + inner, 0.0);
                                 const float* row = x + o * size * inner;
                                 for (i64 d = 0; d < size; ++d) {
                                   for (i64 i = 0; i < inner; ++i)
                                     acc[i] += static_cast<double>(row[d * inner + i]);
                                 }
                                 for (i64 i = 0; i < inner; ++i)
                                   y[o * inner + i] = static_cast<float>(acc[i]);
                               }
                             });
}

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA
