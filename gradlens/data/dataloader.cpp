// DataLoader: seeded Fisher-Yates order per epoch; one worker thread builds batch i + 1 while the
// caller holds batch i. The worker reads order_ only while busy_, and start_epoch() changes order_
// only after cancelling the pending request and waiting until the worker is idle.
#include "gradlens/data/dataloader.h"

#include <algorithm>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "gradlens/autograd/error.h"

namespace gradlens::data {

namespace {

// Uniform in [0, bound) by rejection: the accepted range [2^64 mod bound, 2^64) holds a whole
// number of copies of [0, bound). Only mt19937_64 itself is specified by the standard, so no std::
// distribution is used.
std::uint64_t bounded(std::mt19937_64& gen, std::uint64_t bound) {
  const std::uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const std::uint64_t r = gen();
    if (r >= threshold) return r % bound;
  }
}

}  // namespace

DataLoader::DataLoader(const CifarSplit& split,
                       std::int64_t batch_size,
                       bool shuffle,
                       std::uint64_t seed,
                       bool drop_last)
    : DataLoader(
          split,
          DataLoaderOptions{
              .batch_size = batch_size, .shuffle = shuffle, .seed = seed, .drop_last = drop_last}) {
}

DataLoader::DataLoader(const CifarSplit& split, const DataLoaderOptions& options)
    : split_(split), options_(options), rng_(options.seed) {
  GRADLENS_CHECK(
      options.batch_size > 0, "[DataLoader] batch_size must be positive, got ", options.batch_size);
  GRADLENS_CHECK(static_cast<std::int64_t>(split.images.size()) == split.size() * kCifarImageBytes,
                 "[DataLoader] split holds ",
                 split.size(),
                 " labels but ",
                 split.images.size(),
                 " image bytes, expected ",
                 split.size() * kCifarImageBytes);
  if (options_.prefetch) worker_ = std::thread([this] { worker_loop(); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    job_.reset();
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();  // waits for at most the batch being built
}

std::int64_t DataLoader::batches_per_epoch() const {
  const std::int64_t n = split_.size();
  const std::int64_t b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void DataLoader::start_epoch() {
  std::unique_lock<std::mutex> lock(mutex_);
  cancel_and_wait(lock);
  order_.resize(static_cast<std::size_t>(split_.size()));
  std::iota(order_.begin(), order_.end(), std::int64_t{0});
  rng_at_epoch_start_ = rng_;
  if (options_.shuffle) {
    for (std::size_t i = order_.size(); i > 1; --i) {
      std::swap(order_[i - 1], order_[bounded(rng_, i)]);
    }
  }
  ++epoch_;
  cursor_ = 0;
  if (options_.prefetch && batches_per_epoch() > 0) request(0);
}

LoaderPosition DataLoader::position() const {
  std::ostringstream generator;
  generator << (epoch_ == 0 ? rng_ : rng_at_epoch_start_);
  return {.epochs_started = epoch_, .next_batch = cursor_, .generator = generator.str()};
}

void DataLoader::restore(const LoaderPosition& position) {
  // The standard fixes mt19937_64's text form (its 312 state words), so any library reads it.
  std::mt19937_64 generator;
  std::istringstream text(position.generator);
  text >> generator;
  if (text.fail() || !(text >> std::ws).eof())
    throw std::invalid_argument("[DataLoader] the saved generator is not a std::mt19937_64 state");
  if (position.epochs_started < 0 || position.next_batch < 0 ||
      position.next_batch > batches_per_epoch())
    throw std::invalid_argument("[DataLoader] cannot continue at epoch " +
                                std::to_string(position.epochs_started) + ", batch " +
                                std::to_string(position.next_batch) + " of " +
                                std::to_string(batches_per_epoch()));
  std::unique_lock<std::mutex> lock(mutex_);
  cancel_and_wait(lock);
  rng_ = generator;
  if (position.epochs_started == 0) {  // nothing drawn yet
    epoch_ = 0;
    cursor_ = 0;
    order_.clear();
    return;
  }
  lock.unlock();
  epoch_ = position.epochs_started - 1;
  start_epoch();  // draws the epoch's order again and asks for batch 0
  lock.lock();
  cancel_and_wait(lock);
  cursor_ = position.next_batch;
  if (options_.prefetch && cursor_ < batches_per_epoch()) request(cursor_);
}

bool DataLoader::next(Batch& batch) {
  if (epoch_ == 0) start_epoch();
  if (cursor_ >= batches_per_epoch()) return false;
  if (!options_.prefetch) {
    build(cursor_++, batch);
    return true;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [this] { return ready_index_.has_value(); });
  // Requests go out in cursor order and start_epoch() clears stale ones, so this is batch cursor_.
  Batch taken = std::move(ready_);
  const std::exception_ptr error = ready_error_;
  ready_ = Batch{};
  ready_index_.reset();
  ready_error_ = nullptr;
  if (++cursor_ < batches_per_epoch()) request(cursor_);
  lock.unlock();
  if (error) std::rethrow_exception(error);
  batch = std::move(taken);
  return true;
}

void DataLoader::build(std::int64_t batch_index, Batch& out) const {
  const std::int64_t n = split_.size();
  const std::int64_t begin = batch_index * options_.batch_size;
  const std::int64_t end = std::min(n, begin + options_.batch_size);
  out.indices.assign(order_.begin() + begin, order_.begin() + end);
  out.labels.resize(out.indices.size());
  for (std::size_t k = 0; k < out.indices.size(); ++k) {
    out.labels[k] = split_.labels[static_cast<std::size_t>(out.indices[k])];
  }
  out.images = to_normalized_tensor(split_, out.indices, options_.normalize);
}

void DataLoader::request(std::int64_t batch_index) {
  job_ = batch_index;
  cv_.notify_all();
}

void DataLoader::cancel_and_wait(std::unique_lock<std::mutex>& lock) {
  job_.reset();
  cv_.wait(lock, [this] { return !busy_; });
  ready_index_.reset();
  ready_ = Batch{};
  ready_error_ = nullptr;
}

void DataLoader::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || job_.has_value(); });
    if (stop_) return;
    const std::int64_t batch_index = *job_;
    job_.reset();
    busy_ = true;
    lock.unlock();
    Batch batch;
    std::exception_ptr error;
    try {
      build(batch_index, batch);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    busy_ = false;
    ready_index_ = batch_index;
    ready_ = std::move(batch);
    ready_error_ = error;
    cv_.notify_all();
  }
}

}  // namespace gradlens::data
