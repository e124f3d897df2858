#include "gradlens/autograd/storage.h"

#include <atomic>

#include "gradlens/kernels/backend.h"

namespace gradlens {

namespace {

struct Counters {
  std::atomic<std::size_t> current{0}, peak{0};
};
Counters counters[2];  // indexed by DeviceType

Counters& counters_for(Device device) { return counters[device.is_cpu() ? 0 : 1]; }

void count_allocation(Device device, std::size_t bytes) {
  Counters& c = counters_for(device);
  const std::size_t now = c.current.fetch_add(bytes) + bytes;
  std::size_t peak = c.peak.load();
  while (now > peak && !c.peak.compare_exchange_weak(peak, now)) {
  }
}

}  // namespace

MemoryStats memory_stats(Device device) {
  Counters& c = counters_for(device);
  return {c.current.load(), c.peak.load()};
}

void reset_peak_memory(Device device) {
  Counters& c = counters_for(device);
  c.peak.store(c.current.load());
}

Storage::Storage(std::size_t bytes, Device device) : bytes_(bytes), device_(device) {
  // Zero-sized tensors still get a distinct, valid pointer so views and copies need no special
  // case.
  data_ = backend_for(device).allocate(bytes == 0 ? 64 : bytes);
  count_allocation(device, bytes_);
}

Storage::~Storage() {
  if (!data_) return;
  backend_for(device_).deallocate(data_);
  counters_for(device_).current.fetch_sub(bytes_);
}

}  // namespace gradlens
