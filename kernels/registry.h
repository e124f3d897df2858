// Internal: where backend_for() finds each backend. cuda/no_cuda.cpp stands in for CUDA when the
// build has none.
#pragma once

#include "kernels/backend.h"

namespace gradlens::detail {

Backend& cpu_backend();
Backend& cuda_backend(int index);  // throws std::runtime_error without CUDA or a GPU
bool cuda_device_present();

}  // namespace gradlens::detail
