// Row-wise softmax / log_softmax over x [rows, cols] and their backward (softmax: dx = y * (dy -
// sum(dy * y)); log_softmax: dx = dy - exp(y) * sum(dy)); cross_entropy = mean_i (logsumexp(x_i) -
// x_i[t_i]) with dx = dloss * (softmax - onehot) / rows; pick and index_rows gathers and scatters.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "gradlens/kernels/cpu/common/thread_pool.h"
#include "gradlens/kernels/cpu/cpu_backend.h"

namespace gradlens::cpu::GRADLENS_CPU_ISA {
namespace {

// Rows per chunk: keep each chunk at least kElementwiseGrain elements.
i64 row_grain(i64 cols) { return std::max<i64>(1, kElementwiseGrain / std::max<i64>(1, cols)); }

float row_max(const float* x, i64 cols) {
  float m = -INFINITY;
  for (i64 j = 0; j < cols; ++j) m = std::max(m, x[j]);
  return m;
}

// sum_j exp(x_j - m), in double
double sum_exp(const float* x, i64 cols, float m) {
  double total = 0.0;
  for (i64 j = 0; j < cols; ++j) total += static_cast<double>(std::exp(x[j] - m));
  return total;
}

}  // namespace

void CpuBackend::softmax_forward(const float* x, float* y, i64 rows, i64 cols) {
  thread_pool().parallel_for(0, rows, row_grain(cols), [=](i64 lo, i64 hi) {
    for (i64 i = lo; i < hi; ++i) {
      const float* xi = x + i * cols;
      float* yi = y + i * cols;
      const float m = row_max(xi, cols);
      double total = 0.0;
      for (i64 j = 0; j < cols; ++j) {
        yi[j] = std::exp(xi[j] - m);
        total += static_cast<double>(yi[j]);
      }
      const float inv = static_cast<float>(1.0 / total);
      for (i64 j = 0; j < cols; ++j) yi[j] *= inv;
    }
  });
}

void CpuBackend::softmax_backward(const float* y, const float* dy, float* dx, i64 rows, i64 cols) {
  thread_pool().parallel_for(0, rows, row_grain(cols), [=](i64 lo, i64 hi) {
    for (i64 i = lo; i < hi; ++i) {
      const float* yi = y + i * cols;
      const float* gi = dy + i * cols;
      double dot = 0.0;
      for (i64 j = 0; j < cols; ++j) dot += static_cast<double>(yi[j]) * gi[j];
      const float d = static_cast<float>(dot);
      for (i64 j = 0; j < cols; ++j) dx[i * cols + j] = yi[j] * (gi[j] - d);
    }
  });
}

void CpuBackend::log_softmax_forward(const float* x, float* y, i64 rows, i64 cols) {
  thread_pool().parallel_for(0, rows, row_grain(cols), [=](i64 lo, i64 hi) {
    for (i64 i = lo; i < hi; ++i) {
      const float* xi = x + i * cols;
      const float m = row_max(xi, cols);
      const float log_total = static_cast<float>(std::log(sum_exp(xi, cols, m)));
      for (i64 j = 0; j < cols; ++j) y[i * cols + j] = (xi[j] - m) - log_total;
    }
  });
}

void CpuBackend::log_softmax_backward(
    const float* y, const float* dy, float* dx, i64 rows, i64 cols) {
  thread_pool().parallel_for(0, rows, row_grain(cols), [=](i64 lo, i64 hi) {
    for (i64 i = lo; i < hi; ++i) {
      const float* yi = y + i * cols;
      const float* gi = dy + i * cols;
      double total = 0.0;
      for (i64 j = 0; j < cols; ++j) total += static_cast<double>(gi[j]);
      const float s = static_cast<float>(total);
      for (i64 j = 0; j < cols; ++j) dx[i * cols + j] = gi[j] - std::exp(yi[j]) * s;
    }
  });
}

void CpuBackend::cross_entropy_forward(
    const float* logits, const i64* targets, float* probs, float* loss, i64 rows, i64 cols) {
  // Serial: rows are few (a batch) and the loss is a sum in a fixed order.
  double total = 0.0;
  for (i64 i = 0; i < rows; ++i) {
    const float* xi = logits + i * cols;
    float* pi = probs + i * cols;
    const float m = row_max(xi, cols);
    double sum = 0.0;
    for (i64 j = 0; j < cols; ++j) {
      pi[j] = std::exp(xi[j] - m);
      sum += static_cast<double>(pi[j]);
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (i64 j = 0; j < cols; ++j) pi[j] *= inv;
    // -log softmax(x)[t] = logsumexp(x) - x[t] = m + log(sum) - x[t]
    total += static_cast<double>(m) + std::log(sum) - static_cast<double>(xi[targets[i]]);
  }
  loss[0] = rows > 0 ? static_cast<float>(total / static_cast<double>(rows)) : NAN;
}

void CpuBackend::cross_entropy_backward(
    const float* probs, const i64* targets, const float* dloss, float* dx, i64 rows, i64 cols) {
  const float scale = dloss[0] / static_cast<float>(rows);
  for (i64 i = 0; i < rows; ++i) {
    const float* pi = probs + i * cols;
    float* di = dx + i * cols;
    for (i64 j = 0; j < cols; ++j) di[j] = scale * pi[j];
    di[targets[i]] = scale * (pi[targets[i]] - 1.f);
  }
}

void CpuBackend::pick_forward(const float* x, const i64* index, float* y, i64 rows, i64 cols) {
  for (i64 i = 0; i < rows; ++i) y[i] = x[i * cols + index[i]];
}

void CpuBackend::pick_backward(const float* dy, const i64* index, float* dx, i64 rows, i64 cols) {
  std::fill(dx, dx + rows * cols, 0.f);
  for (i64 i = 0; i < rows; ++i) dx[i * cols + index[i]] += dy[i];
}

void CpuBackend::index_rows_forward(
    const float* x, const i64* index, float* y, i64 count, i64 row_size) {
  const i64 grain = row_grain(row_size);
  thread_pool().parallel_for(0, count, grain, [=](i64 lo, i64 hi) {
    for (i64 j = lo; j < hi; ++j) {
      std::memcpy(y + j * row_size,
                  x + index[j] * row_size,
                  static_cast<std::size_t>(row_size) * sizeof(float));
    }
  });
}

void CpuBackend::index_rows_backward(
    const float* dy, const i64* index, float* dx, i64 count, i64 row_size, i64 src_rows) {
  // Serial: repeated indices add into the same row, in j order.
  std::fill(dx, dx + src_rows * row_size, 0.f);
  for (i64 j = 0; j < count; ++j) {
    float* out = dx + index[j] * row_size;
    const float* in = dy + j * row_size;
    for (i64 i = 0; i < row_size; ++i) out[i] += in[i];
  }
}

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA
