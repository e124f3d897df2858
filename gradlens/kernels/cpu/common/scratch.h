// Scratch memory for the CPU kernels (shared by every ISA variant): 64-byte aligned buffers that
// only grow, so steady-state training allocates nothing per call. Kernels keep them thread_local
// (one per worker thread).
#pragma once

#include <cstddef>
#include <cstdint>

namespace gradlens::cpu {

inline constexpr std::size_t kAlignment = 64;

/// 64-byte aligned allocation; never returns null for 0 bytes. Throws std::bad_alloc.
void* aligned_allocate(std::size_t bytes);
void aligned_free(void* ptr);
/// The host's available RAM (MemAvailable), or 2 GiB where it cannot be read.
std::size_t host_available_memory();

class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ~ScratchBuffer() { aligned_free(data_); }
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;

  /// At least `count` elements of T; the contents are unspecified (kept from the last use).
  template <class T = float>
  T* get(std::int64_t count) {
    const std::size_t bytes = static_cast<std::size_t>(count) * sizeof(T);
    if (bytes > capacity_) grow(bytes);
#ifndef NDEBUG
    poison(bytes);  // debug builds: a kernel that reads scratch it did not write sees NaN
#endif
    return static_cast<T*>(data_);
  }

 private:
  void grow(std::size_t bytes);
  void poison(std::size_t bytes);
  void* data_ = nullptr;
  std::size_t capacity_ = 0;  // bytes
};

}  // namespace gradlens::cpu
