// max_pool2d: y = max over each kernel x kernel window (padding counts as -inf); the first maximum
// in row-major scan order wins and a NaN always wins, as in PyTorch's CPU kernel. indices hold h*w
// positions; backward scatters dy to them: dx[idx] += dy.
#include <algorithm>
#include <cmath>
#include <limits>

#include "gradlens/kernels/cpu/common/scratch.h"
#include "gradlens/kernels/cpu/common/thread_pool.h"
#include "gradlens/kernels/cpu/cpu_backend.h"
#include "gradlens/kernels/cpu/pool_window.h"
#include "gradlens/kernels/cpu/simd.h"

namespace gradlens::cpu::GRADLENS_CPU_ISA {
namespace {

// One plane [h, w] -> [oh, ow], any kernel, stride and padding.
void pool_plane(const Pool2dParams& p, const float* x, float* y, std::int32_t* idx) {
  for (i64 oh = 0; oh < p.oh; ++oh) {
    const i64 h0 = oh * p.stride - p.padding;
    const i64 h_lo = std::max<i64>(h0, 0), h_hi = std::min(h0 + p.kernel, p.h);
    for (i64 ow = 0; ow < p.ow; ++ow) {
      const i64 w0 = ow * p.stride - p.padding;
      const i64 w_lo = std::max<i64>(w0, 0), w_hi = std::min(w0 + p.kernel, p.w);
      float best = -std::numeric_limits<float>::infinity();
      i64 best_at = h_lo * p.w + w_lo;
      for (i64 ih = h_lo; ih < h_hi; ++ih) {
        for (i64 iw = w_lo; iw < w_hi; ++iw) {
          const float v = x[ih * p.w + iw];
          if (v > best || std::isnan(v)) {
            best = v;
            best_at = ih * p.w + iw;
          }
        }
      }
      y[oh * p.ow + ow] = best;
      idx[oh * p.ow + ow] = static_cast<std::int32_t>(best_at);
    }
  }
}

}  // namespace

void CpuBackend::max_pool2d_forward(const Pool2dParams& p,
                                    const float* x,
                                    float* y,
                                    std::int32_t* indices) {
  const i64 planes = p.n * p.c, in_plane = p.h * p.w, out_plane = p.oh * p.ow;
  if (planes == 0 || out_plane == 0) return;
  const bool fast = p.kernel == 2 && p.stride == 2 && p.padding == 0;
  const i64 grain = std::max<i64>(1, kElementwiseGrain / (in_plane + out_plane));
  // Planes per call of the 2x2 kernel, up to about 2K inputs (more measured no faster; its
  // candidates stay in L1).
  const i64 stack = fast ? std::max<i64>(1, 2048 / in_plane) : 1;
  thread_pool().parallel_for(0, planes, grain, [&](i64 lo, i64 hi) {
    for (i64 i = lo; i < hi;) {
      const i64 n = std::min(stack, hi - i);
      const float* xp = x + i * in_plane;
      float* yp = y + i * out_plane;
      std::int32_t* ip = indices + i * out_plane;
      if (fast) {
        max_pool_2x2</*Relu=*/false>(xp, n, in_plane, p.w, p.h, p.w, yp, ip);
      } else {
        pool_plane(p, xp, yp, ip);
      }
      i += n;
    }
  });
}

void CpuBackend::max_pool2d_backward(const Pool2dParams& p,
                                     const float* dy,
                                     const std::int32_t* indices,
                                     float* dx) {
  const i64 planes = p.n * p.c, in_plane = p.h * p.w, out_plane = p.oh * p.ow;
  const i64 grain = std::max<i64>(1, kElementwiseGrain / std::max<i64>(1, in_plane + out_plane));
  thread_pool().parallel_for(0, planes, grain, [&](i64 lo, i64 hi) {
    for (i64 i = lo; i < hi; ++i) {
      float* dxp = dx + i * in_plane;
      const float* dyp = dy + i * out_plane;
      const std::int32_t* ip = indices + i * out_plane;
      std::fill(dxp, dxp + in_plane, 0.f);
      for (i64 j = 0; j < out_plane; ++j) dxp[ip[j]] += dyp[j];
    }
  });
}

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA
