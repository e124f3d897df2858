// DataLoader: shuffled, normalized [B, 3, 32, 32] batches of a CifarSplit, the next one built on a
// background thread while the caller trains on the current one. Reproducible from the seed.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gradlens/autograd/tensor.h"
#include "gradlens/data/cifar10.h"
#include "gradlens/data/transforms.h"
#include "gradlens/export.h"

namespace gradlens::data {

struct GRADLENS_API Batch {
  Tensor images;                      // [B, 3, 32, 32], CPU, normalized
  std::vector<std::int64_t> labels;   // B labels, 0-9
  std::vector<std::int64_t> indices;  // B positions in the split
};

/// Where a loader stands, for checkpoints: restore() on a loader of the same split and options
/// continues exactly as this one would.
struct GRADLENS_API LoaderPosition {
  std::int64_t epochs_started = 0;  // the current epoch included
  std::int64_t next_batch = 0;      // batches of the current epoch already handed out
  std::string generator;  // the shuffling generator before this epoch's shuffle (its text)
};

struct GRADLENS_API DataLoaderOptions {
  std::int64_t batch_size = 4;
  bool shuffle = true;
  std::uint64_t seed = 0;
  bool drop_last = false;  // drop a last batch smaller than batch_size
  bool prefetch = true;    // build the next batch on a background thread
  Normalize normalize = kTutorialNormalize;
};

/// Epoch e's order is a Fisher-Yates shuffle drawn from one std::mt19937_64(seed) continued across
/// epochs, with its own bounded draw (std::shuffle and uniform_int_distribution differ between
/// standard libraries), so the run is reproducible from the seed on any platform.
///
///   DataLoader loader(train, 4, /*shuffle=*/true, /*seed=*/0);
///   for (int epoch = 0; epoch < 2; ++epoch) {
///     loader.start_epoch();
///     for (Batch batch; loader.next(batch);) train_step(batch.images, batch.labels);
///   }
///
/// `split` must outlive the loader. Not thread-safe: one thread calls start_epoch() and next().
class GRADLENS_API DataLoader {
 public:
  DataLoader(const CifarSplit& split,
             std::int64_t batch_size,
             bool shuffle,
             std::uint64_t seed,
             bool drop_last = false);
  DataLoader(const CifarSplit& split, const DataLoaderOptions& options);
  // The loader keeps a reference: a temporary split would dangle.
  DataLoader(CifarSplit&&, std::int64_t, bool, std::uint64_t, bool = false) = delete;
  DataLoader(CifarSplit&&, const DataLoaderOptions&) = delete;
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Begins the next epoch with a fresh permutation, abandoning what is left of the current one.
  void start_epoch();
  /// The epoch's next batch; false at its end. The first call starts epoch 0 if start_epoch() was
  /// never called. Rethrows an error raised while building the batch.
  bool next(Batch& batch);

  std::int64_t batches_per_epoch() const;
  std::int64_t batch_size() const { return options_.batch_size; }
  /// Epochs started so far (1 during the first).
  std::int64_t epochs_started() const { return epoch_; }
  LoaderPosition position() const;
  /// Continues from `position` (same split and options): the current epoch's order is drawn again
  /// from its saved generator and the next batch is position.next_batch. Throws
  /// std::invalid_argument on a generator text that is not a std::mt19937_64 or a batch past the
  /// epoch's end.
  void restore(const LoaderPosition& position);
  /// The current epoch's order of split positions.
  const std::vector<std::int64_t>& order() const { return order_; }

 private:
  void build(std::int64_t batch_index, Batch& out) const;
  void request(std::int64_t batch_index);  // asks the worker for a batch (mutex_ held)
  void cancel_and_wait(std::unique_lock<std::mutex>& lock);
  void worker_loop();

  const CifarSplit& split_;
  DataLoaderOptions options_;
  std::mt19937_64 rng_;
  std::mt19937_64 rng_at_epoch_start_;  // for position()
  std::vector<std::int64_t> order_;     // read by the worker only while busy_
  std::int64_t epoch_ = 0;
  std::int64_t cursor_ = 0;  // next batch index that next() returns

  // Worker state, guarded by mutex_: one requested batch, one finished batch.
  std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<std::int64_t> job_;  // requested batch index, not yet taken by the worker
  bool busy_ = false;                // the worker is building a batch
  std::optional<std::int64_t> ready_index_;
  Batch ready_;
  std::exception_ptr ready_error_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace gradlens::data
