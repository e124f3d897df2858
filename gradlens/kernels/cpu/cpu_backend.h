// CpuBackend: the reference kernels, on raw row-major float buffers. One .cpp per op family
// (cpu_backend, elementwise, reduce, linear, conv2d, pool, loss, sgd); conv2d and linear share the
// SIMD kernels of microkernels.h; threads and scratch memory come from common/.
// Every .cpp in this folder is compiled once per ISA (generic, avx2, avx512), each copy in its own
// namespace gradlens::cpu::<isa> with its own flags; common/isa.h picks one copy at start-up.
#pragma once

#include <cstdint>

#include "gradlens/kernels/backend.h"

#ifndef GRADLENS_CPU_ISA
#error \
    "kernels/cpu/*.cpp are compiled once per ISA: kernels/CMakeLists.txt defines GRADLENS_CPU_ISA"
#endif

namespace gradlens::cpu::GRADLENS_CPU_ISA {

// Items per chunk for memory-bound loops: below this a thread hand-off costs more than it saves.
inline constexpr std::int64_t kElementwiseGrain = std::int64_t{1} << 16;
// Multiply-adds per chunk below which a second thread does not pay for itself (conv2d's paths).
inline constexpr std::int64_t kConvGrainMacs = std::int64_t{1} << 17;

/// sum of x [n] in double, in a fixed order (eight interleaved partial sums, so it vectorizes).
double sum_double(const float* x, i64 n);

class CpuBackend final : public Backend {
 public:
  Device device() const override { return kCPU; }

  void* allocate(std::size_t bytes) override;
  void deallocate(void* ptr) override;
  void copy(void* dst, const void* src, std::size_t bytes) override;
  void copy_from_host(void* dst, const void* host_src, std::size_t bytes) override;
  void copy_to_host(void* host_dst, const void* src, std::size_t bytes) override;
  void synchronize() override {}
  std::size_t available_memory() override;

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
};

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA
