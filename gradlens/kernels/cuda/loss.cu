// Row-wise softmax / log_softmax and their backward, cross_entropy, pick and index_rows on the
// GPU: one warp per row (the rows are logits, 10 wide for the tutorial), the row's max and sum by
// warp shuffles. The loss mean is one block summing the per-row losses in a fixed order.
#include "gradlens/kernels/cuda/cuda_backend.cuh"
#include "gradlens/kernels/cuda/launch.cuh"

namespace gradlens::cuda {

namespace {

constexpr int kRowsPerBlock = kThreads / kWarp;

unsigned row_blocks(i64 rows) { return grid_for(rows, kRowsPerBlock); }

// The row this warp owns in the current round, or -1; rounds keep whole warps together.
__device__ inline i64 warp_row(i64 round) {
  return (blockIdx.x + round * i64{gridDim.x}) * kRowsPerBlock + threadIdx.x / kWarp;
}

__device__ inline float row_max(const float* x, i64 cols, int lane) {
  float m = -INFINITY;
  for (i64 j = lane; j < cols; j += kWarp) m = fmaxf(m, x[j]);
  return warp_max(m);
}

__device__ inline float row_sum_exp(const float* x, i64 cols, float m, int lane) {
  float s = 0.f;
  for (i64 j = lane; j < cols; j += kWarp) s += expf(x[j] - m);
  return warp_all_sum(s);
}

enum class RowOp { Softmax, LogSoftmax, SoftmaxBackward, LogSoftmaxBackward };

template <RowOp Op>
__global__ void row_kernel(const float* in, const float* dy, float* out, i64 rows, i64 cols) {
  const int lane = threadIdx.x % kWarp;
  for (i64 round = 0;; ++round) {
    const i64 row = warp_row(round);
    if (row - threadIdx.x / kWarp >= rows) break;  // the block is past the end
    if (row >= rows) continue;
    const float* x = in + row * cols;
    float* y = out + row * cols;
    if constexpr (Op == RowOp::Softmax) {
      const float m = row_max(x, cols, lane);
      const float inv = 1.f / row_sum_exp(x, cols, m, lane);
      for (i64 j = lane; j < cols; j += kWarp) y[j] = expf(x[j] - m) * inv;
    } else if constexpr (Op == RowOp::LogSoftmax) {
      const float m = row_max(x, cols, lane);
      const float log_total = logf(row_sum_exp(x, cols, m, lane));
      for (i64 j = lane; j < cols; j += kWarp) y[j] = (x[j] - m) - log_total;
    } else if constexpr (Op == RowOp::SoftmaxBackward) {  // x is the softmax output
      const float* g = dy + row * cols;
      float dot = 0.f;
      for (i64 j = lane; j < cols; j += kWarp) dot += x[j] * g[j];
      dot = warp_all_sum(dot);
      for (i64 j = lane; j < cols; j += kWarp) y[j] = x[j] * (g[j] - dot);
    } else {  // x is the log_softmax output
      const float* g = dy + row * cols;
      float total = 0.f;
      for (i64 j = lane; j < cols; j += kWarp) total += g[j];
      total = warp_all_sum(total);
      for (i64 j = lane; j < cols; j += kWarp) y[j] = g[j] - expf(x[j]) * total;
    }
  }
}

// probs = softmax(logits), row_loss[i] = logsumexp(logits_i) - logits_i[t_i].
__global__ void cross_entropy_rows_kernel(
    const float* logits, const i64* targets, float* probs, float* row_loss, i64 rows, i64 cols) {
  const int lane = threadIdx.x % kWarp;
  for (i64 round = 0;; ++round) {
    const i64 row = warp_row(round);
    if (row - threadIdx.x / kWarp >= rows) break;
    if (row >= rows) continue;
    const float* x = logits + row * cols;
    float* p = probs + row * cols;
    const float m = row_max(x, cols, lane);
    const float total = row_sum_exp(x, cols, m, lane);
    const float inv = 1.f / total;
    for (i64 j = lane; j < cols; j += kWarp) p[j] = expf(x[j] - m) * inv;
    if (lane == 0) row_loss[row] = (m + logf(total)) - x[targets[row]];
  }
}

__global__ void mean_kernel(const float* values, i64 n, float* out) {
  __shared__ float shared[kWarp];
  float acc = 0.f;
  for (i64 i = threadIdx.x; i < n; i += blockDim.x) acc += values[i];
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) out[0] = n > 0 ? acc / static_cast<float>(n) : NAN;
}

struct CrossEntropyBackward {
  const float* probs;
  const i64* targets;
  const float* dloss;
  float* dx;
  i64 rows, cols;
  __device__ void operator()(i64 i) const {
    const float scale = dloss[0] / static_cast<float>(rows);
    const i64 row = i / cols, j = i % cols;
    dx[i] = scale * (j == targets[row] ? probs[i] - 1.f : probs[i]);
  }
};

struct Pick {
  const float* x;
  const i64* index;
  float* y;
  i64 cols;
  __device__ void operator()(i64 i) const { y[i] = x[i * cols + index[i]]; }
};

struct PickBackward {
  const float* dy;
  const i64* index;
  float* dx;
  i64 cols;
  __device__ void operator()(i64 i) const {
    const i64 row = i / cols;
    dx[i] = i % cols == index[row] ? dy[row] : 0.f;
  }
};

struct IndexRows {
  const float* x;
  const i64* index;
  float* y;
  i64 row_size;
  __device__ void operator()(i64 i) const {
    y[i] = x[index[i / row_size] * row_size + i % row_size];
  }
};

// One thread per column: adds the dy rows into dx in j order, so repeated indices accumulate in
// the CPU twin's order without atomics. dx is zeroed first.
struct IndexRowsBackward {
  const float* dy;
  const i64* index;
  float* dx;
  i64 count, row_size;
  __device__ void operator()(i64 col) const {
    for (i64 j = 0; j < count; ++j) dx[index[j] * row_size + col] += dy[j * row_size + col];
  }
};

template <RowOp Op>
void launch_rows(cudaStream_t stream,
                 const char* op,
                 const float* in,
                 const float* dy,
                 float* out,
                 i64 rows,
                 i64 cols) {
  if (rows == 0 || cols == 0) return;
  row_kernel<Op><<<row_blocks(rows), kThreads, 0, stream>>>(in, dy, out, rows, cols);
  check_launch(stream, op, {rows, cols});
}

}  // namespace

void CudaBackend::softmax_forward(const float* x, float* y, i64 rows, i64 cols) {
  launch_rows<RowOp::Softmax>(stream(), "softmax_forward", x, nullptr, y, rows, cols);
}

void CudaBackend::softmax_backward(const float* y, const float* dy, float* dx, i64 rows, i64 cols) {
  launch_rows<RowOp::SoftmaxBackward>(stream(), "softmax_backward", y, dy, dx, rows, cols);
}

void CudaBackend::log_softmax_forward(const float* x, float* y, i64 rows, i64 cols) {
  launch_rows<RowOp::LogSoftmax>(stream(), "log_softmax_forward", x, nullptr, y, rows, cols);
}

void CudaBackend::log_softmax_backward(
    const float* y, const float* dy, float* dx, i64 rows, i64 cols) {
  launch_rows<RowOp::LogSoftmaxBackward>(stream(), "log_softmax_backward", y, dy, dx, rows, cols);
}

void CudaBackend::cross_entropy_forward(
    const float* logits, const i64* targets, float* probs, float* loss, i64 rows, i64 cols) {
  DeviceScratch row_loss(*this, static_cast<std::size_t>(rows) * sizeof(float));
  if (rows > 0) {
    cross_entropy_rows_kernel<<<row_blocks(rows), kThreads, 0, stream()>>>(
        logits, targets, probs, row_loss.as<float>(), rows, cols);
    check_launch(stream(), "cross_entropy_forward", {rows, cols});
  }
  mean_kernel<<<1, 1024, 0, stream()>>>(row_loss.as<float>(), rows, loss);
  check_launch(stream(), "cross_entropy_forward mean", {rows});
}

void CudaBackend::cross_entropy_backward(
    const float* probs, const i64* targets, const float* dloss, float* dx, i64 rows, i64 cols) {
  launch_map(stream(),
             "cross_entropy_backward",
             rows * cols,
             CrossEntropyBackward{probs, targets, dloss, dx, rows, cols});
}

void CudaBackend::pick_forward(const float* x, const i64* index, float* y, i64 rows, i64 cols) {
  launch_map(stream(), "pick_forward", rows, Pick{x, index, y, cols});
}

void CudaBackend::pick_backward(const float* dy, const i64* index, float* dx, i64 rows, i64 cols) {
  launch_map(stream(), "pick_backward", rows * cols, PickBackward{dy, index, dx, cols});
}

void CudaBackend::index_rows_forward(
    const float* x, const i64* index, float* y, i64 count, i64 row_size) {
  launch_map(stream(), "index_rows_forward", count * row_size, IndexRows{x, index, y, row_size});
}

void CudaBackend::index_rows_backward(
    const float* dy, const i64* index, float* dx, i64 count, i64 row_size, i64 src_rows) {
  fill(dx, 0.f, src_rows * row_size);
  launch_map(
      stream(), "index_rows_backward", row_size, IndexRowsBackward{dy, index, dx, count, row_size});
}

}  // namespace gradlens::cuda
