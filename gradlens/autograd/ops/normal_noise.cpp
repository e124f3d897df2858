// normal_noise: x plus counter-based Gaussian noise (kernels/philox.h), generated on x's device.
// Row r is sample samples[r] of stream streams[r]; nothing is recorded on the tape (the noise is a
// constant of the sampling methods, not something to differentiate).
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/autograd/ops/common.h"

namespace gradlens {

Tensor normal_noise(const Tensor& x,
                    std::span<const std::int64_t> streams,
                    std::span<const std::int64_t> samples,
                    float stdev,
                    std::uint64_t seed,
                    std::uint32_t purpose) {
  const detail::OpScope scope("normal_noise");
  detail::check_defined("normal_noise", x, "x");
  GRADLENS_CHECK(x.dim() >= 1 && static_cast<std::int64_t>(streams.size()) == x.size(0) &&
                     streams.size() == samples.size(),
                 "[normal_noise] one stream and one sample per row of x ",
                 shape_str(x.shape()),
                 ", got ",
                 streams.size(),
                 " and ",
                 samples.size());
  Tensor y = Tensor::empty(x.shape(), x.device());
  const std::int64_t rows = x.size(0);
  if (rows == 0) return y;
  const detail::IndexBuffer stream_buffer(streams, x.device()), sample_buffer(samples, x.device());
  const NoiseParams p{seed, purpose, rows, x.numel() / rows, stdev};
  detail::backend_of(x).normal_noise(
      p, stream_buffer.data(), sample_buffer.data(), x.data(), y.data());
  return y;
}

}  // namespace gradlens
