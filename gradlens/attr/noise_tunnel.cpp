// NoiseTunnel: A_{i,s} = base(x_i + eps_{i,s}), eps ~ N(0, stdev^2); smoothgrad = sum_s A / nt,
// smoothgrad_sq = sum_s A^2 / nt, vargrad = smoothgrad_sq - smoothgrad^2 (Captum's order of ops).
#include "gradlens/attr/noise_tunnel.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "gradlens/attr/batching.h"
#include "gradlens/attr/registry.h"
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/kernels/philox.h"

namespace gradlens::attr {

std::string_view to_string(NoiseTunnelType type) {
  switch (type) {
    case NoiseTunnelType::SmoothGrad:
      return "smoothgrad";
    case NoiseTunnelType::SmoothGradSq:
      return "smoothgrad_sq";
    case NoiseTunnelType::VarGrad:
      return "vargrad";
  }
  return "?";
}

NoiseTunnelType parse_noise_tunnel_type(std::string_view name) {
  if (name == "smoothgrad") return NoiseTunnelType::SmoothGrad;
  if (name == "smoothgrad_sq") return NoiseTunnelType::SmoothGradSq;
  if (name == "vargrad") return NoiseTunnelType::VarGrad;
  detail::throw_invalid("[noise_tunnel] unknown nt_type '",
                        name,
                        "' (expected smoothgrad, smoothgrad_sq or vargrad)");
}

Tensor repeat_interleave(const Tensor& x, std::int64_t samples) {
  std::vector<std::int64_t> rows(static_cast<std::size_t>(x.size(0)));
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<std::int64_t>(i);
  return index_rows(x, repeat_interleave(rows, samples));
}

std::vector<std::int64_t> repeat_interleave(std::span<const std::int64_t> values,
                                            std::int64_t samples) {
  std::vector<std::int64_t> out;
  out.reserve(values.size() * static_cast<std::size_t>(samples));
  for (const std::int64_t v : values) out.insert(out.end(), static_cast<std::size_t>(samples), v);
  return out;
}

namespace {

// x [N * m, rest...] viewed as [N, m, rest...], summed over the m samples -> [N, rest...].
Tensor sum_samples(const Tensor& x, std::int64_t n, std::int64_t m) {
  Shape shape = x.shape();
  GRADLENS_CHECK(!shape.empty() && shape[0] == n * m,
                 "[noise_tunnel] the base method returned ",
                 shape_str(shape),
                 " for ",
                 n * m,
                 " sample rows");
  shape[0] = m;
  shape.insert(shape.begin(), n);
  return sum_dim(reshape(x, shape), 1);
}

}  // namespace

Attributions NoiseTunnel::attribute(const Tensor& inputs,
                                    const Targets& targets,
                                    const Tensor& baselines) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) > 0,
                 "[noise_tunnel] inputs must be a non-empty batch");
  GRADLENS_CHECK(options_.nt_samples >= 1,
                 "[noise_tunnel] nt_samples must be at least 1, got ",
                 options_.nt_samples);
  GRADLENS_CHECK(options_.nt_samples_batch_size >= 0,
                 "[noise_tunnel] nt_samples_batch_size must be >= 0 (0 = all), got ",
                 options_.nt_samples_batch_size);
  GRADLENS_CHECK(std::isfinite(options_.stdevs) && options_.stdevs >= 0.f,
                 "[noise_tunnel] stdevs must be finite and >= 0, got ",
                 options_.stdevs);
  NoGradGuard no_grad;  // the base's compute_gradients switches the tape back on
  const std::int64_t n = inputs.size(0);
  const auto t = expand_targets(targets, n);
  const std::vector<std::int64_t> streams = image_streams(options_.image_ids, n, name());

  // Images in groups whose noisy rows (one partition's inputs) fit a chunk, so the budget bounds
  // the work whatever the number of images. Each image's draws are its own: groups change nothing.
  // (Saved draws are indexed by row of the whole batch: they keep it whole.)
  const std::size_t row_bytes = static_cast<std::size_t>(inputs.numel() / n) * sizeof(float);
  const Device device = inputs.device();
  const std::size_t chunk_bytes = std::min({planner_.memory_budget(device),
                                            base_->batching().memory_budget(device),
                                            preferred_chunk_bytes(device)});
  // A partition's noisy rows, the base's attributions and their squares: about 4 rows each. A
  // partition larger than a chunk (nt_samples_batch_size 0 with many samples) is cut to fit: each
  // sample's draw is its own, so only the order of the sum over samples changes.
  const std::int64_t rows_per_chunk =
      std::max<std::int64_t>(1, static_cast<std::int64_t>(chunk_bytes / (4 * row_bytes)));
  const std::int64_t per_call = std::min(samples_per_call(), rows_per_chunk);
  const std::int64_t group = std::max<std::int64_t>(1, rows_per_chunk / per_call);
  if (n > group && !options_.draws) {
    const bool per_image_baselines = baselines.defined() && baselines.shape() == inputs.shape() &&
                                     !options_.draw_baseline_from_distrib;
    return attribute_in_groups(n, group, [&](std::int64_t b, std::int64_t e) {
      const auto part = [b, e](const auto& v) {
        return std::span(v).subspan(static_cast<std::size_t>(b), static_cast<std::size_t>(e - b));
      };
      return attribute_images(slice(inputs, b, e),
                              part(t),
                              per_image_baselines ? slice(baselines, b, e) : baselines,
                              part(streams),
                              per_call);
    });
  }
  return attribute_images(inputs, t, baselines, streams, per_call);
}

std::int64_t NoiseTunnel::samples_per_call() const {
  return options_.nt_samples_batch_size == 0
             ? options_.nt_samples
             : std::min<std::int64_t>(options_.nt_samples, options_.nt_samples_batch_size);
}

Attributions NoiseTunnel::attribute_images(const Tensor& inputs,
                                           std::span<const std::int64_t> t,
                                           const Tensor& baselines,
                                           std::span<const std::int64_t> streams,
                                           std::int64_t per_call) {
  const std::int64_t n = inputs.size(0);
  const std::int64_t nt = options_.nt_samples;
  const std::int64_t rows = n * nt;
  Shape expanded = inputs.shape();
  expanded[0] = rows;
  const RandomDraws* draws = options_.draws ? &*options_.draws : nullptr;

  // Draws: sample s of image i takes draw s of the image's streams (draws.h), so the result does
  // not depend on nt_samples_batch_size, the batch or the device. The noise is made on the
  // device, one partition at a time, unless it is handed in.
  // NOTE: Captum draws per partition and reuses one set of baseline rows for all full partitions.
  std::vector<std::int64_t> sample_baselines;
  if (options_.draw_baseline_from_distrib) {
    GRADLENS_CHECK(
        baselines.defined() && baselines.dim() == inputs.dim() && baselines.size(0) >= 1 &&
            std::equal(
                baselines.shape().begin() + 1, baselines.shape().end(), inputs.shape().begin() + 1),
        "[noise_tunnel] draw_baseline_from_distrib needs baselines [K, ...] with the "
        "inputs' row shape; got ",
        baselines.defined() ? shape_str(baselines.shape()) : std::string("none"),
        " for inputs ",
        shape_str(inputs.shape()));
    const std::int64_t k = baselines.size(0);
    sample_baselines = baseline_rows(draws, streams, nt, k, options_.seed, name());
  }
  const Tensor* given = given_noise(draws, expanded, name());

  // Partitions of samples: nt / k of k samples, then the remainder (Captum's order).
  std::vector<std::pair<std::int64_t, std::int64_t>> partitions;
  for (std::int64_t s = 0; s + per_call <= nt; s += per_call)
    partitions.emplace_back(s, s + per_call);
  if (nt % per_call) partitions.emplace_back(nt - nt % per_call, nt);

  const bool need_sq = options_.type != NoiseTunnelType::SmoothGrad;
  const bool need_mean = options_.type != NoiseTunnelType::SmoothGradSq;
  const bool batch_baselines = baselines.defined() && baselines.shape() == inputs.shape() &&
                               !options_.draw_baseline_from_distrib;
  Tensor total, total_sq;
  std::vector<Tensor> delta_parts;  // per partition, image-major: [n * per_image, 1]
  for (const auto& [s0, s1] : partitions) {
    const std::int64_t m = s1 - s0;
    std::vector<std::int64_t> image_of_row, sample_row, row_targets, stream_of_row, sample_of_row;
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::int64_t s = s0; s < s1; ++s) {
        image_of_row.push_back(i);
        sample_row.push_back(i * nt + s);
        row_targets.push_back(t[static_cast<std::size_t>(i)]);
        stream_of_row.push_back(streams[static_cast<std::size_t>(i)]);
        sample_of_row.push_back(s);
      }
    }
    const Tensor repeated = index_rows(inputs, image_of_row);
    const Tensor noisy = given != nullptr
                             ? add(repeated, index_rows(*given, sample_row).to(inputs.device()))
                             : normal_noise(repeated,
                                            stream_of_row,
                                            sample_of_row,
                                            options_.stdevs,
                                            options_.seed,
                                            philox::kNoise);
    Tensor part_baselines = baselines;
    if (options_.draw_baseline_from_distrib) {
      std::vector<std::int64_t> picked;
      picked.reserve(sample_row.size());
      for (const std::int64_t r : sample_row)
        picked.push_back(sample_baselines[static_cast<std::size_t>(r)]);
      part_baselines = index_rows(baselines, picked);
    } else if (batch_baselines) {
      part_baselines = index_rows(baselines, image_of_row);
    }

    const Attributions a = base_->attribute(noisy, row_targets, part_baselines);
    if (need_mean) {
      const Tensor part = sum_samples(a.values, n, m);
      total = total.defined() ? add(total, part) : part;
    }
    if (need_sq) {
      const Tensor part = sum_samples(square(a.values), n, m);
      total_sq = total_sq.defined() ? add(total_sq, part) : part;
    }
    if (a.delta.defined()) {
      GRADLENS_CHECK(a.delta.numel() % n == 0,
                     "[noise_tunnel] the base returned ",
                     a.delta.numel(),
                     " deltas for ",
                     n,
                     " images");
      delta_parts.push_back(reshape(a.delta, {a.delta.numel(), 1}));  // stays on the device
    }
  }

  // Captum: sum * 1 / nt, a float32 division by nt.
  const Tensor count = Tensor::scalar(static_cast<float>(nt), inputs.device());
  Attributions out;
  switch (options_.type) {
    case NoiseTunnelType::SmoothGrad:
      out.values = div(total, count);
      break;
    case NoiseTunnelType::SmoothGradSq:
      out.values = div(total_sq, count);
      break;
    case NoiseTunnelType::VarGrad: {
      const Tensor mean_a = div(total, count);
      out.values = sub(div(total_sq, count), mul(mean_a, mean_a));
      break;
    }
  }
  if (!delta_parts.empty()) {
    // Regrouped per image on the device, so the result is row i * nt + s whatever the
    // partitioning: image i's deltas of each partition in turn.
    std::vector<std::int64_t> order;
    for (std::int64_t i = 0; i < n; ++i) {
      std::int64_t offset = 0;
      for (const Tensor& part : delta_parts) {
        const std::int64_t per_image = part.size(0) / n;
        for (std::int64_t k = 0; k < per_image; ++k) order.push_back(offset + i * per_image + k);
        offset += part.size(0);
      }
    }
    const Tensor all = cat(delta_parts);
    out.delta = reshape(index_rows(all, order), {all.size(0)});
  }
  return out;
}

}  // namespace gradlens::attr

namespace gradlens::attr {
namespace {

constexpr OptionSpec kNoiseTunnelOptions[] = {
    {.name = "noise_tunnel",
     .type = OptionType::Text,
     .default_value = "",
     .choices = "smoothgrad,smoothgrad_sq,vargrad",
     .help = "wrap the method in a NoiseTunnel of this type",
     .captum = "nt_type"},
    {.name = "nt_samples",
     .type = OptionType::Int,
     .default_value = "5",
     .min = 1,
     .max = 1000000,
     .help = "noisy copies per image"},
    {.name = "nt_samples_batch_size",
     .type = OptionType::Int,
     .default_value = "0",
     .min = 0,
     .max = 2147483647,
     .help = "copies per call of the method (0 = all at once)"},
    {.name = "stdevs",
     .type = OptionType::Float,
     .default_value = "1",
     .min = 0,
     .help = "the noise's standard deviation"},
    kSeedOption};

}  // namespace

std::span<const OptionSpec> noise_tunnel_options() { return kNoiseTunnelOptions; }

}  // namespace gradlens::attr
