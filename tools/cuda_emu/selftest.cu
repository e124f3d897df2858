// The emulator's own checks, shown on kernels that break them on purpose (run by ctest as
// cuda_emu_selftest): a read of shared memory nobody wrote sees NaN; a race whose outcome depends
// on the order the threads run in gives different results under different GRADLENS_EMU_SEED
// values; a * b + c is not contracted into an FMA. Exit 0 when every check catches its bug.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

// Reads a shared slot that thread 0 writes only on odd blocks.
__global__ void uninitialised_shared_kernel(float* out) {
  __shared__ float slot[32];
  if (blockIdx.x % 2 == 1 && threadIdx.x == 0) slot[0] = 1.f;
  __syncthreads();
  if (threadIdx.x == 0) out[blockIdx.x] = slot[0];
}

// Every thread appends its index to a shared counter without a barrier or atomic: the value the
// last thread sees depends on the order the threads ran in.
__global__ void racy_kernel(float* out) {
  __shared__ float order[64];
  __shared__ float next[1];
  if (threadIdx.x == 0) next[0] = 0.f;
  __syncthreads();
  const int at = static_cast<int>(next[0]);
  next[0] = static_cast<float>(at + 1);
  order[at % 64] = static_cast<float>(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = order[threadIdx.x];
}

__global__ void multiply_add_kernel(const float* a, float* out) {
  out[0] = a[0] * a[1] + a[2];
  out[1] = fmaf(a[0], a[1], a[2]);
}

int main() {
  int failures = 0;
  {
    std::vector<float> out(4, 0.f);
    uninitialised_shared_kernel<<<4, 32>>>(out.data());
    const bool caught = std::isnan(out[0]) && std::isnan(out[2]) && out[1] == 1.f && out[3] == 1.f;
    std::printf("uninitialised shared memory reads NaN: %s\n", caught ? "yes" : "NO");
    failures += !caught;
  }
  {
    // Within one seed the order differs from block to block and run to run of the schedule; the
    // in-index-order schedule (seed 0) would give order[i] = i.
    std::vector<float> first(64), second(64);
    racy_kernel<<<1, 64>>>(first.data());
    racy_kernel<<<1, 64>>>(second.data());
    bool in_order = true;
    for (int i = 0; i < 64; ++i) in_order = in_order && first[i] == static_cast<float>(i);
    const char* seed = std::getenv("GRADLENS_EMU_SEED");
    const bool seeded = seed == nullptr || std::atoi(seed) != 0;
    const bool caught = seeded ? (!in_order || first != second) : in_order;
    std::printf(
        "racy kernel %s the index order: %s\n", seeded ? "leaves" : "keeps", caught ? "yes" : "NO");
    failures += !caught;
  }
  {
    // 1 + 2^-12 squared, minus its rounded square: an FMA keeps the 2^-24 a separate multiply and
    // add round away.
    const float e = 1.f + 1.f / 4096.f;
    std::vector<float> a = {e, e, -(e * e)}, out(2);
    multiply_add_kernel<<<1, 1>>>(a.data(), out.data());
    const bool caught = out[0] == 0.f && out[1] != 0.f;
    std::printf(
        "a * b + c rounds twice (%g), fmaf once (%g): %s\n", out[0], out[1], caught ? "yes" : "NO");
    failures += !caught;
  }
  std::printf("%d passed, %d failed\n", 3 - failures, failures);
  return failures == 0 ? 0 : 1;
}
