// GRADLENS_CUDA_CHECK: every CUDA call's error becomes a std::runtime_error with file:line (never
// exit()).
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#define GRADLENS_CUDA_CHECK(expr)                                                                \
  do {                                                                                           \
    cudaError_t gradlens_err_ = (expr);                                                          \
    if (gradlens_err_ != cudaSuccess) {                                                          \
      throw std::runtime_error(std::string("[cuda] ") + #expr + " failed at " + __FILE__ + ":" + \
                               std::to_string(__LINE__) + ": " +                                 \
                               cudaGetErrorString(gradlens_err_));                               \
    }                                                                                            \
  } while (0)
