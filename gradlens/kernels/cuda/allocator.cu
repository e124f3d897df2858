// The caching allocator (allocator.cuh): exact size classes, no block splitting. Tensors of one
// shape recur every step, so a freed block is nearly always reused by the next op of that shape.
#include <algorithm>
#include <string>

#include "gradlens/kernels/backend.h"
#include "gradlens/kernels/cuda/allocator.cuh"
#include "gradlens/kernels/cuda/check.cuh"

namespace gradlens::cuda {

namespace {

std::string mib(std::size_t bytes) {
  return std::to_string(bytes / (std::size_t{1} << 20)) + " MiB";
}

}  // namespace

std::size_t CachingAllocator::round_size(std::size_t bytes) {
  constexpr std::size_t kSmall = 512, kLarge = std::size_t{1} << 20;
  if (bytes <= kLarge) return std::max<std::size_t>((bytes + kSmall - 1) / kSmall, 1) * kSmall;
  std::size_t power = kLarge;
  while (power * 2 <= bytes) power *= 2;
  const std::size_t step = power / 8;
  return (bytes + step - 1) / step * step;
}

void* CachingAllocator::allocate(std::size_t bytes) {
  const std::size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = free_.find(size);
  if (it != free_.end() && !it->second.empty()) {
    void* ptr = it->second.back();
    it->second.pop_back();
    cached_ -= size;
    live_.emplace(ptr, size);
    return ptr;
  }
  GRADLENS_CUDA_CHECK(cudaSetDevice(device_));
  void* ptr = nullptr;
  cudaError_t err = cudaMalloc(&ptr, size);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear it, give the cache back and try once more
    release_cache_locked();
    err = cudaMalloc(&ptr, size);
  }
  if (err != cudaSuccess) {
    cudaGetLastError();
    std::size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw OutOfMemoryError("[cuda] out of memory on cuda:" + std::to_string(device_) +
                           " allocating " + std::to_string(bytes) + " bytes (" + mib(size) +
                           " rounded): " + cudaGetErrorString(err) + "; free " + mib(free_bytes) +
                           " of " + mib(total_bytes) + ", " + mib(cached_) + " cached");
  }
  ++mallocs_;
  live_.emplace(ptr, size);
  return ptr;
}

void CachingAllocator::deallocate(void* ptr) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  if (it == live_.end()) return;  // not ours: never free what we did not hand out
  free_[it->second].push_back(ptr);
  cached_ += it->second;
  live_.erase(it);
}

void CachingAllocator::release_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cache_locked();
}

void CachingAllocator::release_cache_locked() {
  // Blocks in the cache may still be read by queued kernels: wait before handing them back.
  cudaDeviceSynchronize();
  for (auto& [size, blocks] : free_) {
    for (void* ptr : blocks) cudaFree(ptr);
  }
  free_.clear();
  cached_ = 0;
}

std::size_t CachingAllocator::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_;
}

std::size_t CachingAllocator::device_allocations() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return mallocs_;
}

}  // namespace gradlens::cuda
