// The 2x2, stride-2, unpadded max pool's window scan, shared by max_pool2d and the conv + ReLU +
// pool op (conv2d.cpp), so both pick the same maximum. Compiled once per ISA, like its callers.
#pragma once

#include <cstdint>

#include "gradlens/kernels/cpu/cpu_backend.h"

namespace gradlens::cpu::GRADLENS_CPU_ISA {

// The tutorial's 2x2, stride-2, unpadded pool. Its rows of 14 and 5 outputs are too short for a
// vector loop over one row (it ran scalar), so the windows are scanned as one flat run,
// branch-free: candidate i has its top-left corner at x[2i]; row pair g's windows are candidates g
// * w + j (j < ow), and those between them, straddling two row pairs, are computed and dropped.
// Starting from the first element equals starting from -inf: it is always taken.
inline void pool_candidates_2x2(const float* __restrict x,
                                std::int32_t w,
                                std::int32_t count,
                                float* __restrict best_out,
                                std::int32_t* __restrict at) {
  for (std::int32_t i = 0; i < count; ++i) {
    const float v0 = x[2 * i], v1 = x[2 * i + 1];
    const float v2 = x[2 * i + w], v3 = x[2 * i + w + 1];
    float best = v0;
    std::int32_t k = 0;
    const bool t1 = v1 > best || v1 != v1;  // v != v: NaN wins
    best = t1 ? v1 : best;
    k = t1 ? 1 : k;
    const bool t2 = v2 > best || v2 != v2;
    best = t2 ? v2 : best;
    k = t2 ? w : k;
    const bool t3 = v3 > best || v3 != v3;
    best = t3 ? v3 : best;
    k = t3 ? w + 1 : k;
    best_out[i] = best;
    at[i] = 2 * i + k;
  }
}

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA
