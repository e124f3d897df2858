#include "autograd/storage.h"

#include "kernels/backend.h"

namespace gradlens {

Storage::Storage(std::size_t bytes, Device device) : bytes_(bytes), device_(device) {
  // Zero-sized tensors still get a distinct, valid pointer so views and copies need no special
  // case.
  data_ = backend_for(device).allocate(bytes == 0 ? 64 : bytes);
}

Storage::~Storage() {
  if (data_) backend_for(device_).deallocate(data_);
}

}  // namespace gradlens
