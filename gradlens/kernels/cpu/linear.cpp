// linear: y [n, out] = x [n, in] * w [out, in]^T + b; dx = dy * w, dw = dy^T * x, db = sum_n dy.
// The micro kernels compute every element as one fixed FMA sequence, so a row's y and dx do not
// depend on the batch it sits in or on the thread split (attribution batches rows of different
// sizes and compares them). Splits never need a cross-thread reduction.
#include <algorithm>

#include "gradlens/kernels/cpu/common/scratch.h"
#include "gradlens/kernels/cpu/common/thread_pool.h"
#include "gradlens/kernels/cpu/cpu_backend.h"
#include "gradlens/kernels/cpu/microkernels.h"

namespace gradlens::cpu::GRADLENS_CPU_ISA {
namespace {

// Multiply-adds per chunk below which a second thread does not pay for itself.
constexpr i64 kGemmGrainMacs = i64{1} << 17;

// At most one chunk per thread, each of at least kGemmGrainMacs.
i64 gemm_grain(i64 items, i64 macs_per_item) {
  const i64 threads = thread_pool().num_threads();
  return std::max(
      {i64{1}, kGemmGrainMacs / std::max<i64>(1, macs_per_item), (items + threads - 1) / threads});
}

// rows [n, len] as taps of micro::correlate: offsets[i] = i * len
const i64* row_offsets(ScratchBuffer& scratch, i64 n, i64 len) {
  i64* offsets = scratch.get<i64>(n);
  for (i64 i = 0; i < n; ++i) offsets[i] = i * len;
  return offsets;
}

// m [rows, cols] -> packed correlate weights of its transpose [cols, rows]
const float* pack_transposed(
    ScratchBuffer& transposed, ScratchBuffer& packed, const float* m, i64 rows, i64 cols) {
  float* t = transposed.get(rows * cols);
  for (i64 r = 0; r < rows; ++r) {
    for (i64 c = 0; c < cols; ++c) t[c * rows + r] = m[r * cols + c];
  }
  float* p = packed.get(rows * cols);
  micro::pack_weights(t, cols, rows, p);
  return p;
}

}  // namespace

void CpuBackend::linear_forward(
    const float* x, const float* w, const float* b, float* y, i64 n, i64 in, i64 out) {
  if (n == 0 || out == 0) return;
  // y[i, o] = dot(x row i, w row o) + b[o]; split the longer of the two output dims.
  if (n >= out) {
    thread_pool().parallel_for(0, n, gemm_grain(n, in * out), [&](i64 lo, i64 hi) {
      micro::dot_rows(x + lo * in, in, hi - lo, w, in, out, in, b, y + lo * out, out);
    });
  } else {
    thread_pool().parallel_for(0, out, gemm_grain(out, n * in), [&](i64 lo, i64 hi) {
      micro::dot_rows(
          x, in, n, w + lo * in, in, hi - lo, in, b != nullptr ? b + lo : nullptr, y + lo, out);
    });
  }
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
  // Both as correlate over columns j of in: dx[i, j] = sum_o dy[i, o] w[o, j] (taps: rows of
  // w), dw[o, j] = sum_i dy[i, o] x[i, j] (taps: rows of x). Column chunks change no element.
  thread_local ScratchBuffer offsets_scratch, transposed, packed;
  if (dx != nullptr && n > 0 && in > 0) {
    const i64* taps = row_offsets(offsets_scratch, out, in);
    float* packed_dy = packed.get(n * out);
    micro::pack_weights(dy, n, out, packed_dy);
    thread_pool().parallel_for(0, in, gemm_grain(in, n * out), [&](i64 lo, i64 hi) {
      micro::correlate(w + lo, taps, out, packed_dy, nullptr, n, hi - lo, in, dx + lo);
    });
  }
  if (dw != nullptr && out > 0 && in > 0) {
    const i64* taps = row_offsets(offsets_scratch, n, in);
    const float* packed_dyt = pack_transposed(transposed, packed, dy, n, out);
    thread_pool().parallel_for(0, in, gemm_grain(in, n * out), [&](i64 lo, i64 hi) {
      micro::correlate(x + lo, taps, n, packed_dyt, nullptr, out, hi - lo, in, dw + lo);
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

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA
