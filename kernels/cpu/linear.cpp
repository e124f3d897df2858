// linear: y [n, out] = x [n, in] * w [out, in]^T + b; dx = dy * w, dw = dy^T * x, db = sum_n dy.
// Eigen GEMM on row-major maps; large batches split over rows (dx, y) or output features (dw),
// so no cross-thread reduction is needed.
#include <algorithm>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/eigen_types.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/thread_pool.h"

namespace gradlens::cpu {
namespace {

// Multiply-adds per chunk below which a second thread does not pay for itself.
constexpr i64 kGemmGrainMacs = i64{1} << 17;

i64 grain_for(i64 macs_per_item) { return std::max<i64>(1, kGemmGrainMacs / macs_per_item); }

}  // namespace

void CpuBackend::linear_forward(
    const float* x, const float* w, const float* b, float* y, i64 n, i64 in, i64 out) {
  if (n == 0 || out == 0) return;
  const ConstMatrixMap weight(w, out, in);
  thread_pool().parallel_for(0, n, grain_for(in * out), [&](i64 lo, i64 hi) {
    const ConstMatrixMap input(x + lo * in, hi - lo, in);
    MatrixMap output(y + lo * out, hi - lo, out);
    if (b != nullptr) {
      output.rowwise() = ConstRowVectorMap(b, out);
      output.noalias() += input * weight.transpose();
    } else {
      output.noalias() = input * weight.transpose();
    }
  });
}

void CpuBackend::linear_backward(const float* x,
                                 const float* w,
                                 const float* dy,
                                 float* dx,
                                 float* dw,
                                 float* db,
                                 i64 n,
                                 i64 in,
                                 i64 out) {
  const ConstMatrixMap grad_out(dy, n, out);
  if (dx != nullptr && n > 0) {
    const ConstMatrixMap weight(w, out, in);
    thread_pool().parallel_for(0, n, grain_for(in * out), [&](i64 lo, i64 hi) {
      MatrixMap grad_in(dx + lo * in, hi - lo, in);
      if (out == 0) {
        grad_in.setZero();
      } else {
        grad_in.noalias() = grad_out.middleRows(lo, hi - lo) * weight;
      }
    });
  }
  if (dw != nullptr && out > 0) {
    const ConstMatrixMap input(x, n, in);
    thread_pool().parallel_for(0, out, grain_for(n * in), [&](i64 lo, i64 hi) {
      MatrixMap grad_w(dw + lo * in, hi - lo, in);
      if (n == 0) {
        grad_w.setZero();
      } else {
        grad_w.noalias() = grad_out.middleCols(lo, hi - lo).transpose() * input;
      }
    });
  }
  if (db != nullptr) {
    thread_local ScratchBuffer scratch;
    double* acc = scratch.get<double>(out);
    std::fill(acc, acc + out, 0.0);
    for (i64 i = 0; i < n; ++i) {
      const float* row = dy + i * out;
      for (i64 o = 0; o < out; ++o) acc[o] += static_cast<double>(row[o]);
    }
    for (i64 o = 0; o < out; ++o) db[o] = static_cast<float>(acc[o]);
  }
}

}  // namespace gradlens::cpu
