// linear as three calls of one tiled shared-memory matrix product C = A * B (+ bias per column):
// forward y = x w^T, dx = dy w, dw = dy^T x; transposes are only strides. A 64x64 tile of C per
// block, k in steps of 16 through shared memory, 4x4 adjacent outputs per thread (128-bit reads).
// When the tiles are too few to fill the GPU (small outputs, long k: dw over a batch of 10,000) k
// is split across blocks and the partial products are added in a fixed order afterwards. With TF32
// on (kernels/precision.h) the same products go through tf32_gemm.cuh's tensor-core kernel.
#include "kernels/cuda/cuda_backend.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/tf32_gemm.cuh"
#include "kernels/precision.h"

namespace gradlens::cuda {

namespace {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16;
constexpr int kGemmThreads = 256;  // 16 x 16 threads, 4 x 4 outputs each

// A(m, k) = a[m * a_m + k * a_k], B(k, n) = b[k * b_k + n * b_n], C(m, n) = c[m * ldc + n].
struct GemmArgs {
  const float* a;
  i64 a_m, a_k;
  const float* b;
  i64 b_k, b_n;
  float* c;
  i64 ldc;
  i64 m, n, k;
  const float* bias;  // [n] or null
  i64 k_per_split;    // blockIdx.z covers k in [z * k_per_split, (z + 1) * k_per_split)
  i64 split_stride;   // offset of split z's C (0 when not split)
};

// Index: int where every offset fits (the host checks), i64 otherwise. With int, 4 blocks of 256
// threads fit a multiprocessor (64 registers a thread): half the threads it can hold.
template <class Index>
__global__ void __launch_bounds__(kGemmThreads, sizeof(Index) == 4 ? 4 : 2)
    gemm_kernel(GemmArgs g) {
  // +4 keeps rows 16-byte aligned (float4 reads) and spreads the transposed stores over the banks
  __shared__ __align__(16) float as[kTileK][kTileM + 4];
  __shared__ __align__(16) float bs[kTileK][kTileN + 4];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const Index m0 = blockIdx.y * Index{kTileM}, n0 = blockIdx.x * Index{kTileN};
  const Index gm = static_cast<Index>(g.m), gn = static_cast<Index>(g.n);
  const Index a_m = static_cast<Index>(g.a_m), a_k = static_cast<Index>(g.a_k);
  const Index b_k = static_cast<Index>(g.b_k), b_n = static_cast<Index>(g.b_n);
  const Index k_begin = blockIdx.z * static_cast<Index>(g.k_per_split);
  const Index k_end = min(static_cast<Index>(g.k), k_begin + static_cast<Index>(g.k_per_split));
  // Let consecutive threads read consecutive addresses of whichever dim is contiguous.
  const bool a_k_inner = a_k == 1, b_n_inner = b_n == 1;
  float acc[4][4] = {};
  for (Index k0 = k_begin; k0 < k_end; k0 += kTileK) {
#pragma unroll
    for (int l = 0; l < kTileM * kTileK / kGemmThreads; ++l) {
      const int idx = tid + l * kGemmThreads;
      const int mm = a_k_inner ? idx / kTileK : idx % kTileM;
      const int kk = a_k_inner ? idx % kTileK : idx / kTileM;
      const Index m = m0 + mm, k = k0 + kk;
      as[kk][mm] = (m < gm && k < k_end) ? g.a[m * a_m + k * a_k] : 0.f;
    }
#pragma unroll
    for (int l = 0; l < kTileN * kTileK / kGemmThreads; ++l) {
      const int idx = tid + l * kGemmThreads;
      const int nn = b_n_inner ? idx % kTileN : idx / kTileK;
      const int kk = b_n_inner ? idx / kTileN : idx % kTileK;
      const Index n = n0 + nn, k = k0 + kk;
      bs[kk][nn] = (n < gn && k < k_end) ? g.b[k * b_k + n * b_n] : 0.f;
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
  float* c = g.c + blockIdx.z * static_cast<Index>(g.split_stride);
  const Index ldc = static_cast<Index>(g.ldc);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const Index m = m0 + 4 * ty + i;
    if (m >= gm) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const Index n = n0 + 4 * tx + j;
      if (n < gn) c[m * ldc + n] = acc[i][j] + (g.bias != nullptr ? g.bias[n] : 0.f);
    }
  }
}

// Whether every offset gemm_kernel<int> computes fits (2^30: room for one tile past the end).
bool fits_32_bits(const GemmArgs& g, i64 splits) {
  constexpr i64 kLimit = i64{1} << 30;
  const i64 m = g.m + kTileM, n = g.n + kTileN, k = g.k + kTileK;
  return m * g.a_m + k * g.a_k < kLimit && k * g.b_k + n * g.b_n < kLimit &&
         m * g.ldc + n + splits * g.split_stride < kLimit && splits * g.k_per_split < kLimit;
}

// GemmArgs as the TF32 kernel's operands (int offsets: fits_32_bits holds).
struct StridedOperands {
  const float* a_data;
  int a_m, a_k;
  const float* b_data;
  int b_k, b_n;
  float* c;
  int ldc;
  const float* bias;
  int split_stride;
  __device__ float a(int m, int k) const { return a_data[m * a_m + k * a_k]; }
  __device__ float b(int k, int n) const { return b_data[k * b_k + n * b_n]; }
  __device__ void store(int m, int n, int split, float v) const {
    c[split * split_stride + m * ldc + n] = v + (bias != nullptr ? bias[n] : 0.f);
  }
};

// One launch of the kernel with the narrowest index that fits; TF32 when asked for and it fits.
void launch_gemm(cudaStream_t stream, dim3 grid, const GemmArgs& g, i64 splits) {
  if (matmul_precision() == MatmulPrecision::TF32 && fits_32_bits(g, splits)) {
    auto i32 = [](i64 v) { return static_cast<int>(v); };
    const StridedOperands ops{g.a,
                              i32(g.a_m),
                              i32(g.a_k),
                              g.b,
                              i32(g.b_k),
                              i32(g.b_n),
                              g.c,
                              i32(g.ldc),
                              g.bias,
                              i32(g.split_stride)};
    launch_tf32_gemm(stream, ops, g.m, g.n, g.k, splits, g.k_per_split);
    return;
  }
  if (fits_32_bits(g, splits)) {
    gemm_kernel<int><<<grid, kGemmThreads, 0, stream>>>(g);
  } else {
    gemm_kernel<i64><<<grid, kGemmThreads, 0, stream>>>(g);
  }
}

struct AddBias {
  const float* bias;
  i64 n;
  float* c;
  __device__ void operator()(i64 i) const { c[i] += bias[i % n]; }
};

// C = A * B (+ bias). Splits k when the output tiles alone would leave most of the GPU idle.
void gemm(CudaBackend& backend, GemmArgs g, const char* op) {
  cudaStream_t stream = backend.stream();
  if (g.m == 0 || g.n == 0) return;
  const i64 tiles = ((g.m + kTileM - 1) / kTileM) * ((g.n + kTileN - 1) / kTileN);
  const i64 splits = choose_splits(tiles, g.k, /*min_per_split=*/256);
  const dim3 grid(static_cast<unsigned>((g.n + kTileN - 1) / kTileN),
                  static_cast<unsigned>((g.m + kTileM - 1) / kTileM),
                  static_cast<unsigned>(splits));
  if (splits == 1 || g.k == 0) {
    g.k_per_split = std::max<i64>(g.k, 1);
    g.split_stride = 0;
    launch_gemm(stream, dim3(grid.x, grid.y, 1), g, 1);
    check_launch(stream, op, {g.m, g.n, g.k});
    return;
  }
  // Partial products [splits, m, n], then summed over the splits in order, then the bias.
  const i64 per_split = ((g.k + splits - 1) / splits + kTileK - 1) / kTileK * kTileK;
  DeviceScratch partial(backend, static_cast<std::size_t>(splits * g.m * g.n) * sizeof(float));
  GemmArgs s = g;
  s.c = partial.as<float>();
  s.ldc = g.n;
  s.bias = nullptr;
  s.k_per_split = per_split;
  s.split_stride = g.m * g.n;
  const unsigned used = static_cast<unsigned>((g.k + per_split - 1) / per_split);
  launch_gemm(stream, dim3(grid.x, grid.y, used), s, used);
  check_launch(stream, op, {g.m, g.n, g.k, splits});
  if (g.ldc == g.n) {
    launch_sum_dim(stream, s.c, 1, used, g.m * g.n, g.c);
  } else {
    throw std::logic_error(std::string("[cuda] ") + op + ": split-k needs a packed output");
  }
  if (g.bias != nullptr) launch_map(stream, op, g.m * g.n, AddBias{g.bias, g.n, g.c});
}

}  // namespace

void CudaBackend::linear_forward(
    const float* x, const float* w, const float* b, float* y, i64 n, i64 in, i64 out) {
  // y [n, out] = x [n, in] * w^T, with w [out, in]: B(k, j) = w[j * in + k]
  gemm(*this, GemmArgs{x, in, 1, w, 1, in, y, out, n, out, in, b, 0, 0}, "linear_forward");
}

void CudaBackend::linear_backward(const float* x,
                                  const float* w,
                                  const float* dy,
                                  float* dx,
                                  float* dw,
                                  float* db,
                                  i64 n,
                                  i64 in,
                                  i64 out) {
  if (dx != nullptr) {  // dx [n, in] = dy [n, out] * w [out, in]
    gemm(*this,
         GemmArgs{dy, out, 1, w, in, 1, dx, in, n, in, out, nullptr, 0, 0},
         "linear_backward dx");
  }
  if (dw != nullptr) {  // dw [out, in] = dy^T [out, n] * x [n, in]
    gemm(*this,
         GemmArgs{dy, 1, out, x, in, 1, dw, in, out, in, n, nullptr, 0, 0},
         "linear_backward dw");
  }
  if (db != nullptr) launch_sum_dim(stream(), dy, 1, n, out, db);  // db [out] = sum over rows
}

}  // namespace gradlens::cuda
