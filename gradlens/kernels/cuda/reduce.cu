// The GPU twins of kernels/cpu/reduce.cpp. sum: fixed-size partial sums per block, then one block
// adds them, so the result does not depend on timing. sum_dim: one group of threads per output
// (a block for long sums over few outputs, a warp for row sums, one thread otherwise).
#include "gradlens/kernels/cuda/cuda_backend.cuh"
#include "gradlens/kernels/cuda/launch.cuh"
#include "gradlens/kernels/cuda/reduce.cuh"

namespace gradlens::cuda {

namespace {

constexpr int kSumBlocks = 1024;  // partials of the first pass (a fixed count: deterministic)

__global__ void partial_sums_kernel(const float* x, i64 n, float* partial) {
  __shared__ float shared[kWarp];
  float acc = 0.f;
  for (i64 i = blockIdx.x * i64{blockDim.x} + threadIdx.x; i < n;
       i += i64{blockDim.x} * gridDim.x) {
    acc += x[i];
  }
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// y[e] = sum_q x[o * size * inner + q * inner + i] for e = o * inner + i, Group threads per e.
template <int Group>
__global__ void sum_dim_kernel(const float* x, i64 outer, i64 size, i64 inner, float* y) {
  __shared__ float shared[kWarp];
  const i64 outputs = outer * inner;
  const int groups_per_block = blockDim.x / Group;
  const int lane = threadIdx.x % Group;
  const i64 first = blockIdx.x * i64{groups_per_block} + threadIdx.x / Group;
  const i64 step = i64{gridDim.x} * groups_per_block;
  const i64 rounds = (outputs + step - 1) / step;  // the same for every thread of the block
  for (i64 round = 0; round < rounds; ++round) {
    const i64 e = first + round * step;
    float acc = 0.f;
    if (e < outputs) {
      const float* base = x + (e / inner) * size * inner + e % inner;
      for (i64 q = lane; q < size; q += Group) acc += base[q * inner];
    }
    if constexpr (Group == kThreads) {
      acc = block_sum(acc, shared);
    } else if constexpr (Group == kWarp) {
      acc = warp_sum(acc);
    }
    if (lane == 0 && e < outputs) y[e] = acc;
  }
}

}  // namespace

void launch_sum_dim(cudaStream_t stream, const float* x, i64 outer, i64 size, i64 inner, float* y) {
  const i64 outputs = outer * inner;
  if (outputs == 0) return;
  if (size >= 1024 && outputs <= 4096) {
    sum_dim_kernel<kThreads>
        <<<grid_for(outputs, 1), kThreads, 0, stream>>>(x, outer, size, inner, y);
  } else if (inner == 1 && size >= kWarp) {
    sum_dim_kernel<kWarp>
        <<<grid_for(outputs, kThreads / kWarp), kThreads, 0, stream>>>(x, outer, size, inner, y);
  } else {
    sum_dim_kernel<1><<<grid_for(outputs), kThreads, 0, stream>>>(x, outer, size, inner, y);
  }
  check_launch(stream, "sum_dim", {outer, size, inner});
}

void CudaBackend::sum(const float* x, i64 n, float* y) {
  const unsigned blocks =
      static_cast<unsigned>(std::min<i64>(kSumBlocks, (n + kThreads - 1) / kThreads));
  if (blocks <= 1) {
    partial_sums_kernel<<<1, kThreads, 0, stream()>>>(x, n, y);
    check_launch(stream(), "sum", {n});
    return;
  }
  DeviceScratch partial(*this, blocks * sizeof(float));
  partial_sums_kernel<<<blocks, kThreads, 0, stream()>>>(x, n, partial.as<float>());
  check_launch(stream(), "sum", {n});
  partial_sums_kernel<<<1, kThreads, 0, stream()>>>(partial.as<float>(), blocks, y);
  check_launch(stream(), "sum", {n, blocks});
}

void CudaBackend::sum_dim(const float* x, i64 outer, i64 size, i64 inner, float* y) {
  launch_sum_dim(stream(), x, outer, size, inner, y);
}

}  // namespace gradlens::cuda
