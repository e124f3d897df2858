// CachingAllocator: device memory through size-classed free lists, so that steady-state training
// and attribution make no cudaMalloc/cudaFree calls. Safe because every kernel of a device runs on
// one stream in order: a block freed by one op is only touched by later ops.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace gradlens::cuda {

class CachingAllocator {
 public:
  explicit CachingAllocator(int device) : device_(device) {}
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  /// A block of at least `bytes`; on out-of-memory the cache is released and cudaMalloc retried,
  /// then OutOfMemoryError names the size, the free and total memory and the cache.
  void* allocate(std::size_t bytes);
  void deallocate(void* ptr);
  /// Returns every cached block to the driver.
  void release_cache();
  /// Bytes in cached (free) blocks.
  std::size_t cached_bytes() const;
  /// cudaMalloc calls so far: benchmarks and tests check it stays flat in steady state.
  std::size_t device_allocations() const;

  /// The size class of a request: multiples of 512 B up to 1 MiB, then steps of 1/8 of the power
  /// of two below (at most 12.5 % waste).
  static std::size_t round_size(std::size_t bytes);

 private:
  void release_cache_locked();

  int device_;
  mutable std::mutex mutex_;
  std::map<std::size_t, std::vector<void*>> free_;  // size class -> cached blocks
  std::unordered_map<void*, std::size_t> live_;     // block -> its size class
  std::size_t cached_ = 0;
  std::size_t mallocs_ = 0;
};

}  // namespace gradlens::cuda
