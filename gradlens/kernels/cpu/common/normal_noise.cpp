// Each row's draws k0 .. k0 + row_size (k0 = sample * row_size) come a Philox block of four at a
// time; rows are spread over the thread pool.
#include "gradlens/kernels/cpu/common/normal_noise.h"

#include <algorithm>

#include "gradlens/kernels/cpu/common/thread_pool.h"
#include "gradlens/kernels/philox.h"

namespace gradlens::cpu {

void normal_noise(const NoiseParams& p,
                  const std::int64_t* stream,
                  const std::int64_t* sample,
                  const float* x,
                  float* y) {
  thread_pool().parallel_for(0, p.rows, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      const std::uint64_t k0 = static_cast<std::uint64_t>(sample[r] * p.row_size);
      const float* xr = x + r * p.row_size;
      float* yr = y + r * p.row_size;
      for (std::int64_t j = 0; j < p.row_size;) {
        const std::uint64_t k = k0 + static_cast<std::uint64_t>(j);
        float z[4];
        philox::normal_block(p.seed, static_cast<std::uint64_t>(stream[r]), p.purpose, k / 4, z);
        for (std::uint64_t e = k % 4; e < 4 && j < p.row_size; ++e, ++j) {
          const float scaled = p.stdev * z[e];  // rounded, then added: no fused multiply-add
          yr[j] = xr[j] + scaled;
        }
      }
    }
  });
}

}  // namespace gradlens::cpu
