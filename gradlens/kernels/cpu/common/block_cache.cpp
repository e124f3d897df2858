#include "gradlens/kernels/cpu/common/block_cache.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <thread>
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
      if (const auto it = warmest(size); it != free_.end()) {
        void* ptr = it->second.ptr;
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
      aligned_free(largest->second.ptr);
      cached_ -= largest->first;
      free_.erase(largest);
    }
    free_.emplace(size, Cached{ptr, std::this_thread::get_id()});
    cached_ += size;
  }

  std::size_t cached() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

 private:
  void release_all() {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [size, block] : free_) aligned_free(block.ptr);
    free_.clear();
    cached_ = 0;
  }

  struct Cached {
    void* ptr;
    std::thread::id freed_by;
  };
  using FreeBlocks = std::multimap<std::size_t, Cached>;

  // Of the cached blocks of this size, the one this thread freed last, else the last freed: the
  // likeliest still in this core's cache. The oldest (what find gives) was the coldest, and with
  // two chunks at once often the other core's: NoiseTunnel's ops stalled on the stores into it.
  // Equal keys sit in insertion order.
  FreeBlocks::iterator warmest(std::size_t size) {
    const auto [first, last] = free_.equal_range(size);
    if (first == last) return free_.end();
    const std::thread::id self = std::this_thread::get_id();
    for (auto it = last; it != first;) {
      if ((--it)->second.freed_by == self) return it;
    }
    return std::prev(last);
  }

  std::mutex mutex_;
  FreeBlocks free_;                              // size -> cached block
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
