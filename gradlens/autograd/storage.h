// Storage: bytes on one device, freed through that device's backend. Views share one Storage.
#pragma once

#include <cstddef>
#include <memory>

#include "gradlens/export.h"
#include "gradlens/kernels/device.h"

namespace gradlens {

class GRADLENS_API Storage {
 public:
  Storage(std::size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  Device device_;
};

/// Bytes held by live Storage on each device type, and the high-water mark since the last reset:
/// how attribution chunks its batches to a memory budget, and how benchmarks report peak memory.
struct GRADLENS_API MemoryStats {
  std::size_t current = 0;
  std::size_t peak = 0;
};
GRADLENS_API MemoryStats memory_stats(Device device);
GRADLENS_API void reset_peak_memory(Device device);

}  // namespace gradlens
