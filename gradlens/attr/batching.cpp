#include "gradlens/attr/batching.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <vector>

#include "gradlens/attr/attribution.h"
#include "gradlens/attr/gradient.h"
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/hooks.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/autograd/storage.h"
#include "gradlens/kernels/backend.h"

namespace gradlens::attr {

std::size_t default_memory_budget(Device device) {
  return backend_for(device).available_memory() / 2;
}

std::size_t BatchPlanner::memory_budget(Device device) const {
  return budget_ ? budget_ : default_memory_budget(device);
}

std::size_t preferred_chunk_bytes(Device device) {
  if (!device.is_cpu()) {
    // On the GPU, rows enough to fill it: on an H200 the Net's IG ran 70k rows/s at 50-row chunks,
    // 830k at 800 and 2.4M at 50k and 80k, so 2 GiB (30k of the Net's rows as the probe counts
    // them) is near full speed. Bigger buys nothing and costs: a chunk past 4 GiB holds tensors
    // past 2^30 elements, which the CUDA kernels' 32-bit-index fast paths refuse (NoiseTunnel over
    // IG for 1,000 images in chunks of half an H200's memory, 1.6M rows: over a minute; 2.2 s now).
    constexpr std::size_t kGpuChunk = std::size_t{2} << 30;
    return std::min(default_memory_budget(device), kGpuChunk);
  }
  // On the CPU a chunk whose activations stay in a core's L2 is fastest. NoiseTunnel over IG (100 x
  // 50, 16 images, two chunks at once, 2 MiB of L2 a core) took 6.6-6.8 CPU seconds at 2-3 MiB
  // chunks, 6.7-7.0 at 4-8 MiB, 7.0-7.7 at 16 MiB and 7.3-8.6 at 0.5-1 MiB, where each op's fixed
  // costs take over: a core's L2, from 2 to 16 MiB.
  static const std::size_t bytes = [] {
    constexpr std::size_t kMin = std::size_t{2} << 20, kMax = std::size_t{16} << 20;
    long l2 = 0;
#ifdef _SC_LEVEL2_CACHE_SIZE
    l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return std::clamp(l2 > 0 ? static_cast<std::size_t>(l2) : kMin, kMin, kMax);
  }();
  return bytes;
}

std::int64_t BatchPlanner::chunk_rows(const std::function<Tensor(const Tensor&)>& forward,
                                      const Shape& row_shape,
                                      Device device) {
  const auto key = std::make_pair(row_shape, static_cast<int>(device.type));
  auto it = row_bytes_.find(key);
  if (it == row_bytes_.end()) {
    // Probe: one forward+backward on two rows, measuring the high-water mark of live storage.
    constexpr std::int64_t kProbeRows = 2;
    Shape probe_shape = row_shape;
    probe_shape.insert(probe_shape.begin(), kProbeRows);
    const Tensor probe = Tensor::zeros(probe_shape, device);
    const std::int64_t target = 0;
    const std::size_t before = memory_stats(device).current;
    reset_peak_memory(device);
    compute_gradients(forward, probe, std::span<const std::int64_t>(&target, 1));
    const std::size_t peak = memory_stats(device).peak;
    const std::size_t per_row =
        std::max<std::size_t>((peak - std::min(peak, before)) / kProbeRows, 1);
    it = row_bytes_.emplace(key, per_row).first;
  }
  // The chunk's own inputs and results are about three more rows of input size each.
  const std::size_t row_bytes =
      it->second + 3 * static_cast<std::size_t>(shape_numel(row_shape)) * sizeof(float);
  // The budget is a ceiling; under it, the chunk the device runs fastest, but at least kMinRows
  // rows: a deep model's rows are large (ResNet8's 1.7 MB), and at one row a chunk each call's
  // fixed costs (packing a conv's weights: 5 % of ResNet8's NoiseTunnel) are paid per row.
  constexpr std::int64_t kMinRows = 8;
  const std::size_t chunk_bytes = std::min(memory_budget(device), preferred_chunk_bytes(device));
  const auto fit = static_cast<std::int64_t>(memory_budget(device) / row_bytes);
  std::int64_t rows =
      std::max(static_cast<std::int64_t>(chunk_bytes / row_bytes), std::min(kMinRows, fit));
  if (max_rows_ > 0) rows = std::min(rows, max_rows_);
  return std::max<std::int64_t>(rows, 1);
}

int BatchPlanner::concurrency(Device device) const {
  if (!device.is_cpu() || any_backward_override()) return 1;  // rules are the calling thread's
  const int threads = num_threads();
  if (concurrency_ >= 1) return std::min(concurrency_, threads);
  // Each chunk in flight holds up to a chunk's bytes: as many as the budget holds.
  const std::size_t chunk_bytes = std::min(memory_budget(device), preferred_chunk_bytes(device));
  const std::size_t fit = memory_budget(device) / std::max<std::size_t>(chunk_bytes, 1);
  return static_cast<int>(std::clamp<std::size_t>(fit, 1, static_cast<std::size_t>(threads)));
}

Attributions attribute_in_groups(
    std::int64_t n,
    std::int64_t group,
    const std::function<Attributions(std::int64_t, std::int64_t)>& part,
    int concurrency) {
  GRADLENS_CHECK(group >= 1, "[batching] group of ", group, " images");
  const std::int64_t groups = (n + group - 1) / group;
  std::vector<Attributions> parts(static_cast<std::size_t>(groups));
  const auto run = [&](std::int64_t g) {
    parts[static_cast<std::size_t>(g)] = part(g * group, std::min(n, (g + 1) * group));
  };
  run_concurrently(groups, concurrency, run);
  std::vector<Tensor> values, deltas;
  for (const Attributions& a : parts) {
    values.push_back(a.values);
    if (a.delta.defined()) deltas.push_back(a.delta);
  }
  Attributions out;
  out.values = cat(values);
  if (!deltas.empty()) out.delta = cat(deltas);
  return out;
}

void run_concurrently(std::int64_t count,
                      int concurrency,
                      const std::function<void(std::int64_t)>& fn) {
  const std::int64_t lanes = std::min<std::int64_t>(std::max(concurrency, 1), count);
  if (lanes <= 1) {
    for (std::int64_t i = 0; i < count; ++i) fn(i);
    return;
  }
  // Each lane takes the next piece not yet taken: never more than `lanes` in flight, and a lane
  // that runs faster takes more pieces (a fixed share per lane left ResNet8's NoiseTunnel waiting
  // on the slower lane for a twelfth of its time). Pieces are taken in order, so every piece below
  // a failing one runs; a lane stops at its first error and the lowest failing piece's error is
  // rethrown, whichever lane ran it.
  std::atomic<std::int64_t> next{0};
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(lanes));
  std::vector<std::int64_t> failed_at(static_cast<std::size_t>(lanes), count);
  parallel_tasks(lanes, [&](std::int64_t lane) {
    for (std::int64_t i = next++; i < count; i = next++) {
      try {
        fn(i);
      } catch (...) {
        errors[static_cast<std::size_t>(lane)] = std::current_exception();
        failed_at[static_cast<std::size_t>(lane)] = i;
        return;
      }
    }
  });
  const auto first = static_cast<std::size_t>(std::min_element(failed_at.begin(), failed_at.end()) -
                                              failed_at.begin());
  if (errors[first]) std::rethrow_exception(errors[first]);
}

void for_each_chunk(std::int64_t total,
                    std::int64_t rows,
                    const std::function<void(std::int64_t, std::int64_t)>& fn) {
  GRADLENS_CHECK(rows >= 1, "[batching] chunk of ", rows, " rows");
  for (std::int64_t begin = 0; begin < total; begin += rows)
    fn(begin, std::min(total, begin + rows));
}

}  // namespace gradlens::attr
