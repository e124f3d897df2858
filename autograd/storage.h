// Storage: bytes on one device, freed through that device's backend. Views share one Storage.
#pragma once

#include <cstddef>
#include <memory>

#include "kernels/device.h"

namespace gradlens {

class Storage {
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

}  // namespace gradlens
