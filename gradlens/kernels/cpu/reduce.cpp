// sum_dim: y[o, i] = sum_d x[o, d, i], each output accumulated in double in a fixed order.
// sum: y[0] = sum_i x[i], accumulated in double over fixed blocks whose partials are added in
// order, so the result does not depend on the thread count.
#include <algorithm>

#include "gradlens/kernels/cpu/common/scratch.h"
#include "gradlens/kernels/cpu/common/thread_pool.h"
#include "gradlens/kernels/cpu/cpu_backend.h"

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
  if (inner == 1) {  // row sums: interleaved partials
    thread_pool().parallel_for(
        0, outer, std::max<i64>(1, kElementwiseGrain / std::max<i64>(1, size)), [=](i64 b, i64 e) {
          for (i64 o = b; o < e; ++o) y[o] = static_cast<float>(sum_double(x + o * size, size));
        });
    return;
  }
  // Work items are (outer, block of kSumDimColumns inner columns): the threads share the work even
  // when outer is 1 (IG's sum over steps), and a block's double accumulators stay in L1. Every
  // output adds its `size` terms in order, whatever the split.
  constexpr i64 kSumDimColumns = 1024;
  const i64 blocks = (inner + kSumDimColumns - 1) / kSumDimColumns;
  const i64 grain = std::max<i64>(1, kElementwiseGrain / (size * std::min(inner, kSumDimColumns)));
  thread_pool().parallel_for(0, outer * blocks, grain, [=](i64 begin, i64 end) {
    double acc[kSumDimColumns];
    for (i64 item = begin; item < end; ++item) {
      const i64 o = item / blocks, i0 = item % blocks * kSumDimColumns;
      const i64 width = std::min(kSumDimColumns, inner - i0);
      std::fill(acc, acc + width, 0.0);
      const float* column = x + o * size * inner + i0;
      for (i64 d = 0; d < size; ++d) {
        for (i64 i = 0; i < width; ++i) acc[i] += static_cast<double>(column[d * inner + i]);
      }
      for (i64 i = 0; i < width; ++i) y[o * inner + i0 + i] = static_cast<float>(acc[i]);
    }
  });
}

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA
