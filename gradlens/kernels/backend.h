// Backend: THE dispatch table. One pure virtual per kernel, so a kernel missing from a backend is a
// compile error. Device pointers and POD params only: no Tensor, Eigen or CUDA types (C++17-clean).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

#include "gradlens/export.h"
#include "gradlens/kernels/device.h"
#include "gradlens/kernels/params.h"

namespace gradlens {

using i64 = std::int64_t;

/// Thrown by Backend::allocate when the device has no room left, even after freeing its cache.
class GRADLENS_API OutOfMemoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class GRADLENS_API Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;

  // Memory. copy() stays on this device; the host copies take a host pointer on one side.
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void deallocate(void* ptr) = 0;
  virtual void copy(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void copy_from_host(void* dst, const void* host_src, std::size_t bytes) = 0;
  virtual void copy_to_host(void* host_dst, const void* src, std::size_t bytes) = 0;
  virtual void synchronize() = 0;
  // Bytes that allocate() could still hand out (free device memory plus this backend's cache; the
  // host's available RAM for the CPU): what attribution sizes its chunks by.
  virtual std::size_t available_memory() = 0;
  // Calls to the device's own allocator so far (cudaMalloc); 0 where nothing is cached. Flat once a
  // training step has run: tests and benchmarks check the caching allocator with it.
  virtual std::size_t device_allocations() const { return 0; }

  // Elementwise. y [n]
  virtual void fill(float* y, float value, i64 n) = 0;
  // y = alpha * x + beta (scalar add, scale, negate)
  virtual void affine(const float* x, float alpha, float beta, float* y, i64 n) = 0;
  // y = a op b with broadcasting (params.h); y [p.numel]
  virtual void binary_forward(
      BinaryOp op, const BroadcastParams& p, const float* a, const float* b, float* y) = 0;
  // da [p.a_numel], db [p.b_numel] (either may be null): dy pulled back and summed over broadcast.
  // Add, Sub and Mul only: div's backward is composed from Mul and Sub
  // (autograd/ops/elementwise.cpp).
  virtual void binary_backward(BinaryOp op,
                               const BroadcastParams& p,
                               const float* a,
                               const float* b,
                               const float* dy,
                               float* da,
                               float* db) = 0;
  // y [n] = op(x) (params.h); param is used by Stabilize only
  virtual void unary_forward(UnaryOp op, const float* x, float* y, i64 n, float param) = 0;
  // y = |den| >= eps ? num / den : fallback, all [n]
  virtual void safe_div(
      const float* num, const float* den, const float* fallback, float eps, float* y, i64 n) = 0;
  // relu: y = max(x, 0); dx = dy * (x > 0), subgradient 0 at x == 0 like PyTorch
  virtual void relu_forward(const float* x, float* y, i64 n) = 0;
  virtual void relu_backward(const float* x, const float* dy, float* dx, i64 n) = 0;
  // channel_affine over x [outer, channels, inner]: y = x * scale[c] + shift[c] (+ addend[i]
  // when given: a residual block's sum; one rounding each, as mul, add, add), then max(., 0) when
  // relu: inference BatchNorm (its residual add, its ReLU) in one pass. Backward: g = y > 0 ? dy :
  // 0, or dy when y is null (no relu); dx = g * scale[c] and, when d_addend is given, d_addend = g.
  virtual void channel_affine_forward(const float* x,
                                      const float* scale,
                                      const float* shift,
                                      const float* addend,
                                      float* y,
                                      i64 outer,
                                      i64 channels,
                                      i64 inner,
                                      bool relu) = 0;
  virtual void channel_affine_backward(const float* y,
                                       const float* dy,
                                       const float* scale,
                                       float* dx,
                                       float* d_addend,
                                       i64 outer,
                                       i64 channels,
                                       i64 inner) = 0;

  // Gaussian noise from the counter-based generator (params.h); stream and sample [p.rows] are
  // indices on this device; y may be x.
  virtual void normal_noise(
      const NoiseParams& p, const i64* stream, const i64* sample, const float* x, float* y) = 0;

  // Reductions: y[0] = sum(x [n]) (accumulated in double on the CPU)
  virtual void sum(const float* x, i64 n, float* y) = 0;
  // y[o, i] = sum_d x[o, d, i] for x [outer, size, inner]
  virtual void sum_dim(const float* x, i64 outer, i64 size, i64 inner, float* y) = 0;

  // linear: x [n, in] * w [out, in]^T + b [out] -> y [n, out]; b may be null
  virtual void linear_forward(
      const float* x, const float* w, const float* b, float* y, i64 n, i64 in, i64 out) = 0;
  // dx [n, in], dw [out, in], db [out]: each may be null when not needed; overwritten
  virtual void linear_backward(const float* x,
                               const float* w,
                               const float* dy,
                               float* dx,
                               float* dw,
                               float* db,
                               i64 n,
                               i64 in,
                               i64 out) = 0;

  // conv2d (params.h); b, dx, dw, db may be null; outputs overwritten. y is the forward's output,
  // read only when p.relu (then dy is masked by y > 0).
  virtual void conv2d_forward(
      const Conv2dParams& p, const float* x, const float* w, const float* b, float* y) = 0;
  virtual void conv2d_backward(const Conv2dParams& p,
                               const float* x,
                               const float* w,
                               const float* y,
                               const float* dy,
                               float* dx,
                               float* dw,
                               float* db) = 0;

  // max_pool2d(relu(conv2d)), 2x2 window, stride 2, no padding: the tutorial's conv, ReLU and pool
  // as one op, the conv's output never stored. y [n, k, oh / 2, ow / 2] and indices into each
  // oh*ow plane, the values the three ops give; p.relu set. The backward takes that y and its dy;
  // dx, dw, db as conv2d_backward's, the same values as the three ops' backward.
  virtual void conv2d_relu_pool_forward(const Conv2dParams& p,
                                        const float* x,
                                        const float* w,
                                        const float* b,
                                        float* y,
                                        std::int32_t* indices) = 0;
  virtual void conv2d_relu_pool_backward(const Conv2dParams& p,
                                         const float* x,
                                         const float* w,
                                         const float* y,
                                         const std::int32_t* indices,
                                         const float* dy,
                                         float* dx,
                                         float* dw,
                                         float* db) = 0;

  // max_pool2d: first maximum in scan order wins (PyTorch); indices [n, c, oh, ow] into h*w
  virtual void max_pool2d_forward(const Pool2dParams& p,
                                  const float* x,
                                  float* y,
                                  std::int32_t* indices) = 0;
  virtual void max_pool2d_backward(const Pool2dParams& p,
                                   const float* dy,
                                   const std::int32_t* indices,
                                   float* dx) = 0;

  // Along the last dim of x [rows, cols].
  virtual void softmax_forward(const float* x, float* y, i64 rows, i64 cols) = 0;
  virtual void softmax_backward(const float* y, const float* dy, float* dx, i64 rows, i64 cols) = 0;
  virtual void log_softmax_forward(const float* x, float* y, i64 rows, i64 cols) = 0;
  virtual void log_softmax_backward(
      const float* y, const float* dy, float* dx, i64 rows, i64 cols) = 0;
  // loss[0] = mean_i -log softmax(logits_i)[targets_i]; probs [rows, cols] = softmax, kept for
  // backward
  virtual void cross_entropy_forward(
      const float* logits, const i64* targets, float* probs, float* loss, i64 rows, i64 cols) = 0;
  // dx = dloss[0] * (probs - onehot(targets)) / rows
  virtual void cross_entropy_backward(const float* probs,
                                      const i64* targets,
                                      const float* dloss,
                                      float* dx,
                                      i64 rows,
                                      i64 cols) = 0;

  // pick: y[i] = x[i, index[i]] for x [rows, cols]; backward scatters dy into a zeroed dx
  virtual void pick_forward(const float* x, const i64* index, float* y, i64 rows, i64 cols) = 0;
  virtual void pick_backward(const float* dy, const i64* index, float* dx, i64 rows, i64 cols) = 0;
  // index_rows: y[j] = x[index[j]], rows of row_size; backward adds dy rows into a zeroed dx
  // [src_rows]
  virtual void index_rows_forward(
      const float* x, const i64* index, float* y, i64 count, i64 row_size) = 0;
  virtual void index_rows_backward(
      const float* dy, const i64* index, float* dx, i64 count, i64 row_size, i64 src_rows) = 0;

  // gather: y[i] = index[i] >= 0 ? x[index[i]] : fill for i in [0, n). Every layout op of imported
  // models (transpose, pad, strided slice, concat along any axis, dilation) is one gather, and so
  // is its backward when no two outputs read the same input (autograd/ops/gather.cpp).
  virtual void gather(const float* x, const i64* index, float fill, float* y, i64 n) = 0;

  // One SGD step on one parameter, in place (params.h has the formula).
  virtual void sgd_update(
      const SgdParams& p, float* param, const float* grad, float* momentum_buf, i64 n) = 0;
};

/// The backend that owns memory on `device`. CPU always exists; CUDA throws std::runtime_error when
/// the build has no CUDA or no GPU is visible.
GRADLENS_API Backend& backend_for(Device device);

/// True when the build has CUDA kernels, they load (libgradlens_cuda.so) and a GPU is visible.
GRADLENS_API bool cuda_is_available();
/// Why cuda_is_available() is false, in one line naming what is missing; "" when it is true.
GRADLENS_API std::string cuda_unavailable_reason();

/// Threads used by the CPU kernels (default: the machine's cores).
GRADLENS_API void set_num_threads(int threads);
GRADLENS_API int num_threads();

/// fn(0) ... fn(count - 1) on those threads, several at once, each call's CPU kernels inline on
/// its own thread: for independent pieces of work too small to split well inside (a chunk of
/// attribution rows). Returns when all are done; the lowest-numbered call's exception is rethrown.
GRADLENS_API void parallel_tasks(std::int64_t count, const std::function<void(std::int64_t)>& fn);

}  // namespace gradlens
