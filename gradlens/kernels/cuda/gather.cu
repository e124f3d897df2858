// gather on the GPU: one output per thread, as the CPU twin.
#include "gradlens/kernels/cuda/cuda_backend.cuh"
#include "gradlens/kernels/cuda/launch.cuh"

namespace gradlens::cuda {

namespace {

struct Gather {
  const float* x;
  const i64* index;
  float fill;
  float* y;
  __device__ void operator()(i64 i) const {
    const i64 at = index[i];
    y[i] = at >= 0 ? x[at] : fill;
  }
};

}  // namespace

void CudaBackend::gather(const float* x, const i64* index, float fill, float* y, i64 n) {
  launch_map(stream(), "gather", n, Gather{x, index, fill, y});
}

}  // namespace gradlens::cuda
