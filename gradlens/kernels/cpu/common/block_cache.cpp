#include "gradlens/kernels/cpu/common/block_cache.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <unordered_map>

#include "gradlens/kernels/backend.h"
#include "gradlens/kernels/cpu/common/scratch.h"

namespace gradlens::cpu {

namespace {

constexpr std::size_t kCachedFrom = std::size_t{64} << 10;  // smaller blocks: malloc's own heap
constexpr std::size_t kGranule = std::size_t{64} << 10;     // sizes rounded up to 64 KiB

class BlockCache {
 public:
  void* allocate(std::size_t bytes) {
    if (bytes < kCachedFrom) return aligned_allocate(bytes);
    const std::size_t size = (bytes + kGranule - 1) / kGranule * kGranule;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (limit_ == 0) limit_ = std::min<std::size_t>(host_available_memory() / 4, 1 << 30);
      if (const auto it = free_.find(size); it != free_.end()) {
        void* ptr = it->second;
        free_.erase(it);
        cached_ -= size;
        live_[ptr] = size;
        return ptr;
      }
    }
    void* ptr = nullptr;
    try {
      ptr = aligned_allocate(size);
    } catch (const OutOfMemoryError&) {
      release_all();  // the cache's blocks first, then the request once more
      ptr = aligned_allocate(size);
    }
    const std::lock_guard<std::mutex> lock(mutex_);
    live_[ptr] = size;
    return ptr;
  }

  void free(void* ptr) {
    if (ptr == nullptr) return;
    std::unique_lock<std::mutex> lock(mutex_);
    const auto it = live_.find(ptr);
    if (it == live_.end()) {  // a small block
      lock.unlock();
      aligned_free(ptr);
      return;
    }
    const std::size_t size = it->second;
    live_.erase(it);
    if (size > limit_) {
      lock.unlock();
      aligned_free(ptr);
      return;
    }
    // Room for it: the largest cached blocks go first (the ones least likely to be asked again).
    while (cached_ + size > limit_ && !free_.empty()) {
      auto largest = std::prev(free_.end());
      aligned_free(largest->second);
      cached_ -= largest->first;
      free_.erase(largest);
    }
    free_.emplace(size, ptr);
    cached_ += size;
  }

  std::size_t cached() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

 private:
  void release_all() {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [size, ptr] : free_) aligned_free(ptr);
    free_.clear();
    cached_ = 0;
  }

  std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;       // size -> cached block
  std::unordered_map<void*, std::size_t> live_;  // large blocks handed out, by address
  std::size_t cached_ = 0, limit_ = 0;
};

// Never destroyed: tensors freed during static destruction still find it, and its blocks stay
// reachable (not leaks) to the leak checker.
BlockCache& cache() {
  static BlockCache* instance = new BlockCache();
  return *instance;
}

}  // namespace

void* block_allocate(std::size_t bytes) { return cache().allocate(bytes); }
void block_free(void* ptr) { cache().free(ptr); }
std::size_t block_cache_bytes() { return cache().cached(); }

}  // namespace gradlens::cpu
