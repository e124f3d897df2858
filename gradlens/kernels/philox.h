// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC11), the
// counter-based generator of cuRAND and PyTorch's CUDA generator: a draw is a pure function of
// (seed, stream, purpose, index), so it is the same on the CPU and the GPU, in any chunking and
// with any thread count. The sampling methods key a stream by the image's index in its data set.
// Header-only, for host code and CUDA kernels alike.
#pragma once

#include <math.h>

#include <cstdint>

#if defined(__CUDACC__)
#define GRADLENS_HOST_DEVICE __host__ __device__
#else
#define GRADLENS_HOST_DEVICE
#endif

namespace gradlens::philox {

struct Block {
  std::uint32_t v[4];
};

/// The bijection itself: 10 rounds over the counter under a 64-bit key (Random123's philox4x32).
GRADLENS_HOST_DEVICE inline Block philox4x32_10(Block ctr, std::uint32_t key0, std::uint32_t key1) {
  constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = std::uint64_t{kMul0} * ctr.v[0];
    const std::uint64_t p1 = std::uint64_t{kMul1} * ctr.v[2];
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32),
                        lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32),
                        lo1 = static_cast<std::uint32_t>(p1);
    ctr = Block{{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return ctr;
}

/// What a stream's draws are for: one image's noise, baseline choices and interpolation points are
/// independent streams.
enum Purpose : std::uint32_t { kNoise = 1, kBaselineIndex = 2, kAlpha = 3 };

/// Block `block` (4 x 32 random bits) of stream (seed, stream, purpose).
GRADLENS_HOST_DEVICE inline Block stream_block(std::uint64_t seed,
                                               std::uint64_t stream,
                                               std::uint32_t purpose,
                                               std::uint64_t block) {
  const Block ctr{{static_cast<std::uint32_t>(block),
                   static_cast<std::uint32_t>(block >> 32),
                   static_cast<std::uint32_t>(stream),
                   static_cast<std::uint32_t>(stream >> 32) << 8 | (purpose & 0xffu)}};
  return philox4x32_10(
      ctr, static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

/// 32 random bits as a double strictly inside (0, 1).
GRADLENS_HOST_DEVICE inline double unit_interval(std::uint32_t bits) {
  return (static_cast<double>(bits) + 0.5) * 0x1p-32;
}

/// Uniform draw k of a stream, in (0, 1): element k % 4 of block k / 4.
GRADLENS_HOST_DEVICE inline double uniform(std::uint64_t seed,
                                           std::uint64_t stream,
                                           std::uint32_t purpose,
                                           std::uint64_t k) {
  return unit_interval(stream_block(seed, stream, purpose, k / 4).v[k % 4]);
}

/// Standard normal draws 4b .. 4b + 3 of a stream, from block b by Box-Muller on its two pairs of
/// uniforms. In double, then rounded once to float: the CPU's and CUDA's log, sin and cos may
/// differ by an ulp of a double, which changes the float only when it falls on a rounding boundary.
GRADLENS_HOST_DEVICE inline void normal_block(std::uint64_t seed,
                                              std::uint64_t stream,
                                              std::uint32_t purpose,
                                              std::uint64_t block,
                                              float (&out)[4]) {
  const Block b = stream_block(seed, stream, purpose, block);
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  for (int pair = 0; pair < 2; ++pair) {
    const double radius = ::sqrt(-2.0 * ::log(unit_interval(b.v[2 * pair])));
    const double angle = kTwoPi * unit_interval(b.v[2 * pair + 1]);
    out[2 * pair] = static_cast<float>(radius * ::cos(angle));
    out[2 * pair + 1] = static_cast<float>(radius * ::sin(angle));
  }
}

/// Standard normal draw k of a stream.
GRADLENS_HOST_DEVICE inline float normal(std::uint64_t seed,
                                         std::uint64_t stream,
                                         std::uint32_t purpose,
                                         std::uint64_t k) {
  float out[4];
  normal_block(seed, stream, purpose, k / 4, out);
  return out[k % 4];
}

}  // namespace gradlens::philox
