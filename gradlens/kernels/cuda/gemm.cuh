// Tiled GEMMs C(m, n) = sum_k A(m, k) B(k, n) whose operands are functors, so a convolution is an
// implicit GEMM (A gathers the input window, nothing is unfolded in memory) and the output goes
// straight to its place (NCHW, plus bias and the fused ReLU). Two kernels over the same operands:
// - gemm_kernel, float32 FMAs: a 64 x 64 tile of C per block of 256 threads, 4 x 4 outputs a
//   thread, k in steps of 16 through shared memory (linear's products, and the convolutions whose
//   weights do not fit the direct kernels' shared memory);
// - tf32_gemm_kernel, the opt-in TF32 tensor-core path (kernels/precision.h): 4 warps, each 32 x 32
//   as 2 x 4 mma.sync m16n8k8 tiles, the values rounded to TF32 once as they are staged; 32-bit
//   indices (callers check the sizes fit).
// Operands: a(m, k), b(k, n) read one element (only m < m_size, n < n_size, k < k_size are asked
// for), store(m, n, split, v) writes one result; a_k_inner() / b_n_inner() say which index is the
// contiguous one, so that consecutive threads load consecutive addresses. blockIdx.z takes k in
// [z * k_per_split, (z + 1) * k_per_split).
#pragma once

#include <cstdint>

#include "gradlens/kernels/cuda/cuda_backend.cuh"
#include "gradlens/kernels/cuda/launch.cuh"

namespace gradlens::cuda {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16;
constexpr int kGemmThreads = 256;  // 16 x 16 threads, 4 x 4 outputs each

// Index: int where every offset fits (the host checks), i64 otherwise. With int, 4 blocks of 256
// threads fit a multiprocessor (64 registers a thread): half the threads it can hold.
template <class Operands, class Index>
__global__ void __launch_bounds__(kGemmThreads, sizeof(Index) == 4 ? 4 : 2)
    gemm_kernel(Operands ops, Index m_size, Index n_size, Index k_size, Index k_per_split) {
  // +4 keeps rows 16-byte aligned (float4 reads) and spreads the transposed stores over the banks
  __shared__ __align__(16) float as[kTileK][kTileM + 4];
  __shared__ __align__(16) float bs[kTileK][kTileN + 4];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  // m on x (up to 2^31 - 1 tiles: a convolution's pixels), n on y (channels, features)
  const Index m0 = blockIdx.x * Index{kTileM}, n0 = blockIdx.y * Index{kTileN};
  const Index k_begin = blockIdx.z * k_per_split;
  const Index k_end = min(k_size, k_begin + k_per_split);
  const bool a_k_inner = ops.a_k_inner(), b_n_inner = ops.b_n_inner();
  float acc[4][4] = {};
  for (Index k0 = k_begin; k0 < k_end; k0 += kTileK) {
#pragma unroll
    for (int l = 0; l < kTileM * kTileK / kGemmThreads; ++l) {
      const int idx = tid + l * kGemmThreads;
      const int mm = a_k_inner ? idx / kTileK : idx % kTileM;
      const int kk = a_k_inner ? idx % kTileK : idx / kTileM;
      const Index m = m0 + mm, k = k0 + kk;
      as[kk][mm] = (m < m_size && k < k_end) ? ops.a(m, k) : 0.f;
    }
#pragma unroll
    for (int l = 0; l < kTileN * kTileK / kGemmThreads; ++l) {
      const int idx = tid + l * kGemmThreads;
      const int nn = b_n_inner ? idx % kTileN : idx / kTileK;
      const int kk = b_n_inner ? idx / kTileN : idx % kTileK;
      const Index n = n0 + nn, k = k0 + kk;
      bs[kk][nn] = (n < n_size && k < k_end) ? ops.b(k, n) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      // One 128-bit load each for the thread's 4 rows of A and 4 columns of B: 16 FMAs per 2.
      const float4 a4 = *reinterpret_cast<const float4*>(&as[kk][4 * ty]);
      const float4 b4 = *reinterpret_cast<const float4*>(&bs[kk][4 * tx]);
      const float av[4] = {a4.x, a4.y, a4.z, a4.w}, bv[4] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const Index m = m0 + 4 * ty + i;
    if (m >= m_size) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const Index n = n0 + 4 * tx + j;
      if (n < n_size) ops.store(m, n, static_cast<Index>(blockIdx.z), acc[i][j]);
    }
  }
}

// One launch of gemm_kernel over `splits` shares of k (k_per_split a multiple of kTileK).
template <class Index, class Operands>
void launch_gemm_kernel(
    cudaStream_t stream, const Operands& ops, i64 m, i64 n, i64 k, i64 splits, i64 k_per_split) {
  const dim3 grid(static_cast<unsigned>((m + kTileM - 1) / kTileM),
                  static_cast<unsigned>((n + kTileN - 1) / kTileN),
                  static_cast<unsigned>(splits));
  gemm_kernel<Operands, Index><<<grid, kGemmThreads, 0, stream>>>(ops,
                                                                  static_cast<Index>(m),
                                                                  static_cast<Index>(n),
                                                                  static_cast<Index>(k),
                                                                  static_cast<Index>(k_per_split));
}

constexpr int kMmaTileM = 64, kMmaTileN = 64, kMmaTileK = 16;
constexpr int kMmaThreads = 128;  // 4 warps, 2 x 2 over the tile
// Row stride 72: the 32 lanes of a fragment load read rows t and columns g (t * 72 + g) from 32
// different banks.
constexpr int kMmaRow = kMmaTileM + 8;

// Round to nearest, ties away from zero, keeping 10 mantissa bits: cvt.rna.tf32.f32. NaN and
// infinities pass unchanged.
__device__ inline float to_tf32(float v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  std::uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
  return __uint_as_float(r);
#else
  std::uint32_t u = __float_as_uint(v);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  return __uint_as_float(u);
#endif
}

// d += A (16 x 8, row) * B (8 x 8, col) for one warp, in mma.sync's fragment layout: lane l holds,
// with g = l / 4 and t = l % 4, a = A[g][t], A[g + 8][t], A[g][t + 4], A[g + 8][t + 4];
// b = B[t][g], B[t + 4][g]; d = D[g][2t], D[g][2t + 1], D[g + 8][2t], D[g + 8][2t + 1].
__device__ inline void mma_tf32(float (&d)[4], const float (&a)[4], const float (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(__float_as_uint(a[0])),
        "r"(__float_as_uint(a[1])),
        "r"(__float_as_uint(a[2])),
        "r"(__float_as_uint(a[3])),
        "r"(__float_as_uint(b[0])),
        "r"(__float_as_uint(b[1])));
#else
  // The same product from warp shuffles: the emulator's (and older GPUs') tensor core. Each lane
  // gathers its rows of A and columns of B over k; the register read is uniform across the warp.
  const int lane = static_cast<int>(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  constexpr unsigned kAll = 0xffffffffu;
  for (int k = 0; k < 8; ++k) {
    const int holder = k % 4;  // lane t of a group holds k = t and t + 4
    const float a_lo = __shfl_sync(kAll, k < 4 ? a[0] : a[2], 4 * g + holder);
    const float a_hi = __shfl_sync(kAll, k < 4 ? a[1] : a[3], 4 * g + holder);
    const float b_0 = __shfl_sync(kAll, k < 4 ? b[0] : b[1], 4 * (2 * t) + holder);
    const float b_1 = __shfl_sync(kAll, k < 4 ? b[0] : b[1], 4 * (2 * t + 1) + holder);
    d[0] = fmaf(a_lo, b_0, d[0]);
    d[1] = fmaf(a_lo, b_1, d[1]);
    d[2] = fmaf(a_hi, b_0, d[2]);
    d[3] = fmaf(a_hi, b_1, d[3]);
  }
#endif
}

// Up to 128 registers a thread (4 blocks, 16 warps a multiprocessor): asking for 6 or 8 blocks
// spills the 32 accumulators (ptx_report), and 8 mma per fragment load keep the tensor cores fed.
template <class Operands>
__global__ void __launch_bounds__(kMmaThreads)
    tf32_gemm_kernel(Operands ops, int m_size, int n_size, int k_size, int k_per_split) {
  __shared__ float as[kMmaTileK][kMmaRow];
  __shared__ float bs[kMmaTileK][kMmaRow];
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, t = lane % 4;
  const int wm = warp / 2 * 32, wn = warp % 2 * 32;
  const int m0 = static_cast<int>(blockIdx.x) * kMmaTileM;
  const int n0 = static_cast<int>(blockIdx.y) * kMmaTileN;
  const int k_begin = static_cast<int>(blockIdx.z) * k_per_split;
  const int k_end = min(k_size, k_begin + k_per_split);
  float acc[2][4][4] = {};
  for (int k0 = k_begin; k0 < k_end; k0 += kMmaTileK) {
    // Consecutive threads take consecutive m (pixels, for a convolution: adjacent in memory).
#pragma unroll
    for (int l = 0; l < kMmaTileM * kMmaTileK / kMmaThreads; ++l) {
      const int idx = tid + l * kMmaThreads, mm = idx % kMmaTileM, kk = idx / kMmaTileM;
      const int m = m0 + mm, k = k0 + kk;
      as[kk][mm] = (m < m_size && k < k_end) ? to_tf32(ops.a(m, k)) : 0.f;
    }
#pragma unroll
    for (int l = 0; l < kMmaTileN * kMmaTileK / kMmaThreads; ++l) {
      const int idx = tid + l * kMmaThreads, nn = idx % kMmaTileN, kk = idx / kMmaTileN;
      const int n = n0 + nn, k = k0 + kk;
      bs[kk][nn] = (n < n_size && k < k_end) ? to_tf32(ops.b(k, n)) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int ks = 0; ks < kMmaTileK; ks += 8) {
      float a[2][4], b[4][2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int r = wm + i * 16 + g;
        a[i][0] = as[ks + t][r];
        a[i][1] = as[ks + t][r + 8];
        a[i][2] = as[ks + t + 4][r];
        a[i][3] = as[ks + t + 4][r + 8];
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int c = wn + j * 8 + g;
        b[j][0] = bs[ks + t][c];
        b[j][1] = bs[ks + t + 4][c];
      }
#pragma unroll
      for (int i = 0; i < 2; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_tf32(acc[i][j], a[i], b[j]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int m = m0 + wm + i * 16 + g + 8 * (e / 2), n = n0 + wn + j * 8 + 2 * t + e % 2;
        if (m < m_size && n < n_size) ops.store(m, n, static_cast<int>(blockIdx.z), acc[i][j][e]);
      }
    }
  }
}

// One launch over `splits` shares of k (k_per_split a multiple of kMmaTileK).
template <class Operands>
void launch_tf32_gemm(
    cudaStream_t stream, const Operands& ops, i64 m, i64 n, i64 k, i64 splits, i64 k_per_split) {
  const dim3 grid(static_cast<unsigned>((m + kMmaTileM - 1) / kMmaTileM),
                  static_cast<unsigned>((n + kMmaTileN - 1) / kMmaTileN),
                  static_cast<unsigned>(splits));
  tf32_gemm_kernel<Operands><<<grid, kMmaThreads, 0, stream>>>(ops,
                                                               static_cast<int>(m),
                                                               static_cast<int>(n),
                                                               static_cast<int>(k),
                                                               static_cast<int>(k_per_split));
}

}  // namespace gradlens::cuda
