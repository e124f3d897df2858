// Host memory shared by every ISA variant of the CPU kernels: aligned allocation, scratch growth
// and the available-RAM reading that attribution sizes its chunks by.
#include "gradlens/kernels/cpu/common/scratch.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "gradlens/kernels/backend.h"

namespace gradlens::cpu {

void* aligned_allocate(std::size_t bytes) {
  // aligned_alloc wants a multiple of the alignment; 0 bytes still gets a unique pointer.
  const std::size_t rounded = std::max<std::size_t>((bytes + kAlignment - 1) / kAlignment, 1);
  void* ptr = std::aligned_alloc(kAlignment, rounded * kAlignment);
  if (ptr == nullptr) {
    throw OutOfMemoryError("[cpu] out of memory allocating " + std::to_string(bytes) + " bytes");
  }
  return ptr;
}

void aligned_free(void* ptr) { std::free(ptr); }

std::size_t host_available_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  std::size_t kib = 0;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return std::size_t{2} << 30;  // no /proc: assume 2 GiB
}

void ScratchBuffer::grow(std::size_t bytes) {
  // Grow by at least 1.5x so a slowly rising batch size does not reallocate every call.
  const std::size_t capacity = std::max(bytes, capacity_ + capacity_ / 2);
  void* fresh = aligned_allocate(capacity);
  aligned_free(data_);
  data_ = fresh;
  capacity_ = capacity;
}

void ScratchBuffer::poison(std::size_t bytes) {
  if (bytes != 0) std::memset(data_, 0xff, bytes);  // all-ones floats and doubles are NaN
}

}  // namespace gradlens::cpu
