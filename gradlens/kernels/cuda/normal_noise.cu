// The GPU twin of kernels/cpu/common/normal_noise.cpp: one thread per Philox block of a row (the
// row's draws k0 .. k0 + row_size start mid-block when k0 % 4 != 0, so a row spans up to
// row_size / 4 + 2 blocks). Draws are made where they are used: nothing is staged on the host.
#include "gradlens/kernels/cuda/cuda_backend.cuh"
#include "gradlens/kernels/cuda/launch.cuh"
#include "gradlens/kernels/philox.h"

namespace gradlens::cuda {

namespace {

struct NormalNoise {
  NoiseParams p;
  i64 blocks_per_row;
  const i64 *stream, *sample;
  const float* x;
  float* y;
  __device__ void operator()(i64 i) const {
    const i64 r = i / blocks_per_row;
    const i64 k0 = sample[r] * p.row_size, k_end = k0 + p.row_size;
    const i64 block = k0 / 4 + i % blocks_per_row;
    const i64 first = max(4 * block, k0), last = min(4 * block + 4, k_end);
    if (first >= last) return;
    float z[4];
    philox::normal_block(p.seed,
                         static_cast<std::uint64_t>(stream[r]),
                         p.purpose,
                         static_cast<std::uint64_t>(block),
                         z);
    const i64 row = r * p.row_size - k0;  // y index of draw k is row + k
    for (i64 k = first; k < last; ++k) {
      y[row + k] = __fadd_rn(x[row + k], __fmul_rn(p.stdev, z[k % 4]));  // as the CPU rounds
    }
  }
};

}  // namespace

void CudaBackend::normal_noise(
    const NoiseParams& p, const i64* streams, const i64* samples, const float* x, float* y) {
  if (p.rows == 0 || p.row_size == 0) return;
  const i64 blocks_per_row = p.row_size / 4 + 2;
  launch_map(stream(),
             "normal_noise",
             p.rows * blocks_per_row,
             NormalNoise{p, blocks_per_row, streams, samples, x, y});
}

}  // namespace gradlens::cuda
