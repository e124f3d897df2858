// The counter-based generator (kernels/philox.h): Random123's known answers, and normal_noise's
// draws depending on (seed, stream, sample) only, never on which rows share a call.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "gradlens/autograd/ops.h"
#include "gradlens/kernels/philox.h"
#include "tests/testing.h"

using namespace gradlens;

TEST(Philox, KnownAnswersFromRandom123) {
  // Random123's tests/kat_vectors, the three "philox4x32 10" lines: counter, key, result.
  struct Kat {
    philox::Block ctr;
    std::uint32_t key0, key1;
    philox::Block expected;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
       0xffffffff,
       0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
       0xa4093822,
       0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Kat& k : kats) {
    const philox::Block out = philox::philox4x32_10(k.ctr, k.key0, k.key1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out.v[i], k.expected.v[i]) << "word " << i;
  }
}

TEST(Philox, NormalDrawsLookStandardNormal) {
  double sum = 0, sum_sq = 0;
  const int n = 200000;
  for (int k = 0; k < n; ++k) {
    const double z = philox::normal(7, 3, philox::kNoise, static_cast<std::uint64_t>(k));
    sum += z;
    sum_sq += z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum_sq / n, 1.0, 0.02);
  // Different purposes and streams are different sequences.
  EXPECT_NE(philox::normal(7, 3, philox::kNoise, 0), philox::normal(7, 3, philox::kAlpha, 0));
  EXPECT_NE(philox::normal(7, 3, philox::kNoise, 0), philox::normal(7, 4, philox::kNoise, 0));
  EXPECT_NE(philox::normal(7, 3, philox::kNoise, 0), philox::normal(8, 3, philox::kNoise, 0));
}

TEST(Philox, NoiseOfARowIsTheSameInAnyBatchAndWithAnyThreads) {
  // Rows (stream, sample) in one call of 6 rows of 75 values (not a multiple of 4: blocks straddle
  // rows), then each row alone: bit for bit, with 1 and 2 threads.
  const std::vector<std::int64_t> streams = {5, 5, 9, 0, 123456789012, 9};
  const std::vector<std::int64_t> samples = {0, 1, 7, 3, 2, 0};
  const Tensor x = gradlens::testing::random_tensor({6, 3, 5, 5}, 1);
  const Tensor all = normal_noise(x, streams, samples, 0.3f, 42, philox::kNoise);
  for (int threads : {1, 2}) {
    gradlens::testing::ThreadCount guard(threads);
    for (std::int64_t r = 0; r < 6; ++r) {
      const std::size_t i = static_cast<std::size_t>(r);
      const Tensor one = normal_noise(slice(x, r, r + 1),
                                      std::span(&streams[i], 1),
                                      std::span(&samples[i], 1),
                                      0.3f,
                                      42,
                                      philox::kNoise);
      EXPECT_EQ(one.to_vector(), slice(all, r, r + 1).to_vector()) << "row " << r;
    }
  }
  // y = x + stdev * z, z the stream's draws from sample * row_size on.
  const std::vector<float> xv = x.to_vector(), yv = all.to_vector();
  for (std::int64_t j = 0; j < 75; ++j) {
    const float z = philox::normal(42, 9, philox::kNoise, static_cast<std::uint64_t>(7 * 75 + j));
    EXPECT_EQ(yv[static_cast<std::size_t>(2 * 75 + j)],
              xv[static_cast<std::size_t>(2 * 75 + j)] + 0.3f * z);
  }
}
