// CudaBackend: the GPU twin of cpu::CpuBackend, with the same kernel table. One .cu per op family
// with the same names as kernels/cpu/ (elementwise, reduce, linear, conv2d, pool, loss, sgd);
// memory through the caching allocator, every kernel and copy on one stream per device.
#pragma once

#include <cuda_runtime.h>

#include "gradlens/kernels/backend.h"
#include "gradlens/kernels/cuda/allocator.cuh"
#include "gradlens/kernels/cuda/check.cuh"

namespace gradlens::cuda {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int index);
  Device device() const override { return Device{DeviceType::CUDA, index_}; }
  /// The stream of this device's kernels and copies (one, in order: the caching allocator relies on
  /// it); with several GPUs it also makes this device current.
  cudaStream_t stream() const {
    if (multi_device_) GRADLENS_CUDA_CHECK(cudaSetDevice(index_));
    return stream_;
  }
  CachingAllocator& allocator() { return allocator_; }

  void* allocate(std::size_t bytes) override;
  void deallocate(void* ptr) override;
  void copy(void* dst, const void* src, std::size_t bytes) override;
  void copy_from_host(void* dst, const void* host_src, std::size_t bytes) override;
  void copy_to_host(void* host_dst, const void* src, std::size_t bytes) override;
  void synchronize() override;
  std::size_t available_memory() override;
  std::size_t device_allocations() const override { return allocator_.device_allocations(); }

  void fill(float* y, float value, i64 n) override;
  void affine(const float* x, float alpha, float beta, float* y, i64 n) override;
  void unary_forward(UnaryOp op, const float* x, float* y, i64 n, float param) override;
  void safe_div(const float* num,
                const float* den,
                const float* fallback,
                float eps,
                float* y,
                i64 n) override;
  void sum_dim(const float* x, i64 outer, i64 size, i64 inner, float* y) override;
  void binary_forward(
      BinaryOp op, const BroadcastParams& p, const float* a, const float* b, float* y) override;
  void binary_backward(BinaryOp op,
                       const BroadcastParams& p,
                       const float* a,
                       const float* b,
                       const float* dy,
                       float* da,
                       float* db) override;
  void relu_forward(const float* x, float* y, i64 n) override;
  void relu_backward(const float* x, const float* dy, float* dx, i64 n) override;
  void channel_affine_forward(const float* x,
                              const float* scale,
                              const float* shift,
                              const float* addend,
                              float* y,
                              i64 outer,
                              i64 channels,
                              i64 inner,
                              bool relu) override;
  void channel_affine_backward(const float* y,
                               const float* dy,
                               const float* scale,
                               float* dx,
                               float* d_addend,
                               i64 outer,
                               i64 channels,
                               i64 inner) override;
  void normal_noise(const NoiseParams& p,
                    const i64* stream,
                    const i64* sample,
                    const float* x,
                    float* y) override;

  void sum(const float* x, i64 n, float* y) override;

  void linear_forward(
      const float* x, const float* w, const float* b, float* y, i64 n, i64 in, i64 out) override;
  void linear_backward(const float* x,
                       const float* w,
                       const float* dy,
                       float* dx,
                       float* dw,
                       float* db,
                       i64 n,
                       i64 in,
                       i64 out) override;

  void conv2d_forward(
      const Conv2dParams& p, const float* x, const float* w, const float* b, float* y) override;
  void conv2d_backward(const Conv2dParams& p,
                       const float* x,
                       const float* w,
                       const float* y,
                       const float* dy,
                       float* dx,
                       float* dw,
                       float* db) override;
  void conv2d_relu_pool_forward(const Conv2dParams& p,
                                const float* x,
                                const float* w,
                                const float* b,
                                float* y,
                                std::int32_t* indices) override;
  void conv2d_relu_pool_backward(const Conv2dParams& p,
                                 const float* x,
                                 const float* w,
                                 const float* y,
                                 const std::int32_t* indices,
                                 const float* dy,
                                 float* dx,
                                 float* dw,
                                 float* db) override;

  void max_pool2d_forward(const Pool2dParams& p,
                          const float* x,
                          float* y,
                          std::int32_t* indices) override;
  void max_pool2d_backward(const Pool2dParams& p,
                           const float* dy,
                           const std::int32_t* indices,
                           float* dx) override;

  void softmax_forward(const float* x, float* y, i64 rows, i64 cols) override;
  void softmax_backward(const float* y, const float* dy, float* dx, i64 rows, i64 cols) override;
  void log_softmax_forward(const float* x, float* y, i64 rows, i64 cols) override;
  void log_softmax_backward(
      const float* y, const float* dy, float* dx, i64 rows, i64 cols) override;
  void cross_entropy_forward(const float* logits,
                             const i64* targets,
                             float* probs,
                             float* loss,
                             i64 rows,
                             i64 cols) override;
  void cross_entropy_backward(const float* probs,
                              const i64* targets,
                              const float* dloss,
                              float* dx,
                              i64 rows,
                              i64 cols) override;

  void pick_forward(const float* x, const i64* index, float* y, i64 rows, i64 cols) override;
  void pick_backward(const float* dy, const i64* index, float* dx, i64 rows, i64 cols) override;
  void index_rows_forward(
      const float* x, const i64* index, float* y, i64 count, i64 row_size) override;
  void index_rows_backward(
      const float* dy, const i64* index, float* dx, i64 count, i64 row_size, i64 src_rows) override;

  void gather(const float* x, const i64* index, float fill, float* y, i64 n) override;
  void sgd_update(
      const SgdParams& p, float* param, const float* grad, float* momentum_buf, i64 n) override;

 private:
  int index_;
  bool multi_device_;
  cudaStream_t stream_ = nullptr;
  CachingAllocator allocator_;
};

/// Scratch device memory for one kernel call, returned to the cache when it goes out of scope
/// (the stream order makes that safe before the kernel has run).
class DeviceScratch {
 public:
  DeviceScratch(CudaBackend& backend, std::size_t bytes)
      : backend_(backend), ptr_(backend.allocate(bytes)) {}
  ~DeviceScratch() { backend_.deallocate(ptr_); }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  CudaBackend& backend_;
  void* ptr_;
};

}  // namespace gradlens::cuda
