// What every CUDA kernel file shares: the launch geometry, the after-launch check that names the
// kernel and its sizes, warp/block reductions and map_kernel (one functor call per element).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "gradlens/kernels/cuda/check.cuh"

namespace gradlens::cuda {

using i64 = std::int64_t;

inline constexpr int kThreads = 256;  // threads per block of the elementwise kernels
inline constexpr int kWarp = 32;

/// Blocks for n items at `per_block` items each, capped: the kernels loop (grid-stride) beyond it.
inline unsigned grid_for(i64 n, i64 per_block = kThreads) {
  const i64 blocks = (n + per_block - 1) / per_block;
  return static_cast<unsigned>(std::clamp<i64>(blocks, 1, i64{1} << 20));
}

/// Into how many pieces to split a long reduction of `work` items when `blocks` blocks alone would
/// leave most of the GPU idle (at most 64, each piece at least `min_per_split` items).
inline i64 choose_splits(i64 blocks, i64 work, i64 min_per_split) {
  constexpr i64 kTargetBlocks = 512;
  return std::clamp<i64>(
      std::min(kTargetBlocks / std::max<i64>(blocks, 1), work / min_per_split), 1, 64);
}

/// Throws "[cuda] <op> [sizes]: <error>" for a failed launch. With GRADLENS_CUDA_SYNC=1 it also
/// waits for the kernel, so an asynchronous fault is pinned on the kernel that caused it (slow: for
/// debugging and compute-sanitizer runs).
void check_launch(cudaStream_t stream, const char* op, std::initializer_list<i64> sizes);

// y = f(i) for i in [0, n): the body of every elementwise kernel. Index is int where n allows:
// a functor whose operator() is a template then divides in 32 bits, far fewer instructions than
// the GPU's 64-bit division routine (IG over 1,000 images on an H200: max-pool forward 1.01 ->
// 0.69 ms, the broadcasting binary ops 2.80 -> 2.07 ms).
template <class Index, class F>
__global__ void map_kernel(Index n, F f) {
  const Index threads = static_cast<Index>(blockDim.x);
  for (Index i = static_cast<Index>(blockIdx.x) * threads + static_cast<Index>(threadIdx.x); i < n;
       i += threads * static_cast<Index>(gridDim.x)) {
    f(i);
  }
}

/// Whether n items take int indices: grid_for caps the grid at 2^28 threads, so a grid-stride
/// step past the last item stays below 2^31 too.
inline bool fits_int_index(i64 n) { return n <= (i64{1} << 30); }

/// `reach`: the number of elements of the largest array f indexes, where that is more than n (a
/// pool's input), so that the int path is taken only where every index fits.
template <class F>
void launch_map(cudaStream_t stream, const char* op, i64 n, F f, i64 reach = 0) {
  if (n <= 0) return;
  if (fits_int_index(std::max(n, reach))) {
    map_kernel<int><<<grid_for(n), kThreads, 0, stream>>>(static_cast<int>(n), f);
  } else {
    map_kernel<i64><<<grid_for(n), kThreads, 0, stream>>>(n, f);
  }
  check_launch(stream, op, {n});
}

__device__ inline float warp_sum(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;  // lane 0 holds the total
}

__device__ inline float warp_max(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;  // every lane holds the maximum
}

__device__ inline float warp_all_sum(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;  // every lane holds the total
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); thread 0 gets the total.
// `shared` holds 32 floats. Every thread of the block must call it.
__device__ inline float block_sum(float v, float* shared) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = warp_sum(v);
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  const int warps = blockDim.x / kWarp;
  v = static_cast<int>(threadIdx.x) < warps ? shared[threadIdx.x] : 0.f;
  if (warp == 0) v = warp_sum(v);
  return v;
}

}  // namespace gradlens::cuda
