// sum_dim as a launch other kernel files reuse (linear's bias gradient, split-K partials).
#pragma once

#include "gradlens/kernels/cuda/launch.cuh"

namespace gradlens::cuda {

/// y[o, i] = sum_d x[o, d, i] for x [outer, size, inner], on `stream`.
void launch_sum_dim(cudaStream_t stream, const float* x, i64 outer, i64 size, i64 inner, float* y);

}  // namespace gradlens::cuda
