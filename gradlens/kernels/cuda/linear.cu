// linear as three calls of one tiled shared-memory matrix product C = A * B (+ bias per column):
// forward y = x w^T, dx = dy w, dw = dy^T x; transposes are only strides. A 64x64 tile of C per
// block, k in steps of 16 through shared memory, 4x4 adjacent outputs per thread (128-bit reads).
// When the tiles are too few to fill the GPU (small outputs, long k: dw over a batch of 10,000) k
// is split across blocks and the partial products are added in a fixed order afterwards. With TF32
// on (kernels/precision.h) the same products go through the tensor-core kernel (gemm.cuh).
#include "gradlens/kernels/cuda/cuda_backend.cuh"
#include "gradlens/kernels/cuda/gemm.cuh"
#include "gradlens/kernels/cuda/launch.cuh"
#include "gradlens/kernels/cuda/reduce.cuh"
#include "gradlens/kernels/precision.h"

namespace gradlens::cuda {

namespace {

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

// GemmArgs as the kernels' operands, in the kernel's index type.
template <class Index>
struct StridedOperands {
  const float* a_data;
  Index a_m, a_k;
  const float* b_data;
  Index b_k, b_n;
  float* c;
  Index ldc;
  const float* bias;
  Index split_stride;
  static StridedOperands from(const GemmArgs& g) {
    return {g.a,
            static_cast<Index>(g.a_m),
            static_cast<Index>(g.a_k),
            g.b,
            static_cast<Index>(g.b_k),
            static_cast<Index>(g.b_n),
            g.c,
            static_cast<Index>(g.ldc),
            g.bias,
            static_cast<Index>(g.split_stride)};
  }
  __device__ bool a_k_inner() const { return a_k == 1; }
  __device__ bool b_n_inner() const { return b_n == 1; }
  __device__ float a(Index m, Index k) const { return a_data[m * a_m + k * a_k]; }
  __device__ float b(Index k, Index n) const { return b_data[k * b_k + n * b_n]; }
  __device__ void store(Index m, Index n, Index split, float v) const {
    c[split * split_stride + m * ldc + n] = v + (bias != nullptr ? bias[n] : 0.f);
  }
};

// Whether every offset gemm_kernel<int> computes fits (2^30: room for one tile past the end).
bool fits_32_bits(const GemmArgs& g, i64 splits) {
  constexpr i64 kLimit = i64{1} << 30;
  const i64 m = g.m + kTileM, n = g.n + kTileN, k = g.k + kTileK;
  return m * g.a_m + k * g.a_k < kLimit && k * g.b_k + n * g.b_n < kLimit &&
         m * g.ldc + n + splits * g.split_stride < kLimit && splits * g.k_per_split < kLimit;
}

// One launch with the narrowest index that fits; TF32 when asked for and it fits.
void launch_gemm(cudaStream_t stream, const GemmArgs& g, i64 splits) {
  if (!fits_32_bits(g, splits)) {
    launch_gemm_kernel<i64>(
        stream, StridedOperands<i64>::from(g), g.m, g.n, g.k, splits, g.k_per_split);
  } else if (matmul_precision() == MatmulPrecision::TF32) {
    launch_tf32_gemm(stream, StridedOperands<int>::from(g), g.m, g.n, g.k, splits, g.k_per_split);
  } else {
    launch_gemm_kernel<int>(
        stream, StridedOperands<int>::from(g), g.m, g.n, g.k, splits, g.k_per_split);
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
  if (splits == 1 || g.k == 0) {
    g.k_per_split = std::max<i64>(g.k, 1);
    g.split_stride = 0;
    launch_gemm(stream, g, 1);
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
  launch_gemm(stream, s, used);
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
