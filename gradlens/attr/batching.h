// Chunking of large attribution batches (IG steps x images, NoiseTunnel samples) to a memory
// budget: the per-row cost of one forward+backward is measured once on two probe rows, then each
// gradient call takes as many rows as the budget allows. Never one image at a time unless the
// budget says so.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>

#include "gradlens/autograd/tensor.h"
#include "gradlens/export.h"

namespace gradlens::attr {

struct GRADLENS_API Attributions;  // attribution.h, which includes this header

/// Half the memory currently free on `device` (the host's available RAM for the CPU).
GRADLENS_API std::size_t default_memory_budget(Device device);
/// The chunk size a device runs fastest, which the planner uses when the budget allows: a core's
/// L2 cache on the CPU (2 to 16 MiB; activations stay in it), the whole default budget on a GPU.
GRADLENS_API std::size_t preferred_chunk_bytes(Device device);

class GRADLENS_API BatchPlanner {
 public:
  /// Bytes that one chunk may hold at its peak (a ceiling: chunks are preferred_chunk_bytes() when
  /// that is smaller); 0 = default_memory_budget().
  void set_memory_budget(std::size_t bytes) { budget_ = bytes; }
  std::size_t memory_budget(Device device) const;
  /// Hard cap on rows per gradient call (Captum's internal_batch_size); 0 = from the budget only.
  void set_max_rows(std::int64_t rows) { max_rows_ = rows; }
  std::int64_t max_rows() const { return max_rows_; }

  /// Rows of shape `row_shape` per gradient call through `forward` (measured once per shape, so
  /// before any concurrent chunk).
  std::int64_t chunk_rows(const std::function<Tensor(const Tensor&)>& forward,
                          const Shape& row_shape,
                          Device device);

  /// Chunks that may run at once on the CPU, each on its own thread with its kernels inline, for
  /// methods whose chunks are independent (IntegratedGradients over many images or one image's
  /// steps, NoiseTunnel samples): 1 (the default) = one at a time, its kernels split over the
  /// threads; 0 = one a thread, as many as the budget holds (5-10 % faster on 2 cores). Results are
  /// the same; above 1 the forward is called from several threads at once, so it must be safe to
  /// (no stateful hook): the command line's Net is.
  void set_concurrency(int chunks) { concurrency_ = chunks; }
  /// How many chunks run at once on `device` (always 1 on a GPU, and under a backward rule).
  int concurrency(Device device) const;

 private:
  std::size_t budget_ = 0;
  std::int64_t max_rows_ = 0;
  int concurrency_ = 1;
  std::map<std::pair<Shape, int>, std::size_t> row_bytes_;  // measured cost per row
};

/// The attributions of `n` images as groups of at most `group`, part(begin, end) for each, joined
/// in order (values, and deltas where the parts have them); `concurrency` groups at a time, each
/// on its own CPU thread (the result is the same).
GRADLENS_API Attributions
attribute_in_groups(std::int64_t n,
                    std::int64_t group,
                    const std::function<Attributions(std::int64_t, std::int64_t)>& part,
                    int concurrency = 1);

/// Calls fn(i) for i in [0, count), at most `concurrency` at a time, each on its own CPU thread
/// (1 or less: in order on the calling thread). fn must not depend on the order.
GRADLENS_API void run_concurrently(std::int64_t count,
                                   int concurrency,
                                   const std::function<void(std::int64_t)>& fn);

/// Calls fn(begin, end) over [0, total) in pieces of at most `rows` (rows >= 1).
GRADLENS_API void for_each_chunk(std::int64_t total,
                                 std::int64_t rows,
                                 const std::function<void(std::int64_t, std::int64_t)>& fn);

}  // namespace gradlens::attr
