// Broadcasting binary ops y = a op b (op in +, -, *, /), unary ops, safe_div, relu and the
// per-channel affine map (with its ReLU). Backward (+, -, * only): da = sum over broadcast
// positions of dy * dy/da (1, 1 or b), db likewise (1, -1 or a); relu: dx = dy * (x > 0).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "gradlens/kernels/broadcast.h"
#include "gradlens/kernels/cpu/common/normal_noise.h"
#include "gradlens/kernels/cpu/common/scratch.h"
#include "gradlens/kernels/cpu/common/thread_pool.h"
#include "gradlens/kernels/cpu/cpu_backend.h"

namespace gradlens::cpu::GRADLENS_CPU_ISA {
namespace {

using Layout = BroadcastLayout;

// fn(ia, ib, iy, len) over the output positions [begin, end), one call per run along the last dim;
// the last dim advances a by l.sa[last] and b by l.sb[last].
template <class Fn>
void for_each_segment(const Layout& l, i64 begin, i64 end, Fn&& fn) {
  const int last = l.ndim - 1;
  const i64 inner = l.shape[last];
  i64 idx[kMaxDims] = {};
  i64 row = begin / inner, col = begin % inner;
  i64 base_a = 0, base_b = 0;
  for (int d = last - 1; d >= 0; --d) {
    idx[d] = row % l.shape[d];
    row /= l.shape[d];
    base_a += idx[d] * l.sa[d];
    base_b += idx[d] * l.sb[d];
  }
  for (i64 iy = begin; iy < end;) {
    const i64 len = std::min(inner - col, end - iy);
    fn(base_a + col * l.sa[last], base_b + col * l.sb[last], iy, len);
    iy += len;
    col = 0;
    for (int d = last - 1; d >= 0; --d) {  // odometer step over the outer dims
      base_a += l.sa[d];
      base_b += l.sb[d];
      if (++idx[d] < l.shape[d]) break;
      base_a -= l.shape[d] * l.sa[d];
      base_b -= l.shape[d] * l.sb[d];
      idx[d] = 0;
    }
  }
}

template <BinaryOp Op>
void segment_forward(const float* a, i64 sa, const float* b, i64 sb, float* y, i64 len) {
  if (sa == 1 && sb == 1) {
    for (i64 j = 0; j < len; ++j) y[j] = apply_binary<Op>(a[j], b[j]);
  } else if (sa == 1 && sb == 0) {
    const float bv = *b;
    for (i64 j = 0; j < len; ++j) y[j] = apply_binary<Op>(a[j], bv);
  } else if (sa == 0 && sb == 1) {
    const float av = *a;
    for (i64 j = 0; j < len; ++j) y[j] = apply_binary<Op>(av, b[j]);
  } else {
    for (i64 j = 0; j < len; ++j) y[j] = apply_binary<Op>(a[j * sa], b[j * sb]);
  }
}

template <BinaryOp Op>
void binary_forward_impl(const BroadcastParams& p, const float* a, const float* b, float* y) {
  if (p.a_numel == p.numel && p.b_numel == p.numel) {  // no broadcast: one flat loop
    thread_pool().parallel_for(0, p.numel, kElementwiseGrain, [=](i64 begin, i64 end) {
      segment_forward<Op>(a + begin, 1, b + begin, 1, y + begin, end - begin);
    });
    return;
  }
  const Layout l = coalesce(p);
  const i64 sa = l.sa[l.ndim - 1], sb = l.sb[l.ndim - 1];
  thread_pool().parallel_for(0, p.numel, kElementwiseGrain, [&](i64 begin, i64 end) {
    for_each_segment(l, begin, end, [&](i64 ia, i64 ib, i64 iy, i64 len) {
      segment_forward<Op>(a + ia, sa, b + ib, sb, y + iy, len);
    });
  });
}

// grad [numel of this operand] = sum over broadcast positions of dy * factor. `self_is_a` picks
// which strides index the operand being differentiated and which the other operand.
void operand_backward(const BroadcastParams& p,
                      const Layout& l,
                      bool self_is_a,
                      GradFactor f,
                      const float* other,
                      const float* dy,
                      float* grad) {
  const i64 self_numel = self_is_a ? p.a_numel : p.b_numel;
  const int last = l.ndim - 1;
  const i64 s_other = self_is_a ? l.sb[last] : l.sa[last];
  if (self_numel == p.numel) {  // not broadcast: self's index is the output index, no reduction
    thread_pool().parallel_for(0, p.numel, kElementwiseGrain, [&](i64 begin, i64 end) {
      for_each_segment(l, begin, end, [&](i64 ia, i64 ib, i64 iy, i64 len) {
        const float* o = f == GradFactor::Other ? other + (self_is_a ? ib : ia) : nullptr;
        float* g = grad + iy;
        const float* d = dy + iy;
        if (f == GradFactor::One) {
          std::memcpy(g, d, static_cast<std::size_t>(len) * sizeof(float));
        } else if (f == GradFactor::MinusOne) {
          for (i64 j = 0; j < len; ++j) g[j] = -d[j];
        } else if (s_other == 1) {
          for (i64 j = 0; j < len; ++j) g[j] = d[j] * o[j];
        } else {
          for (i64 j = 0; j < len; ++j) g[j] = d[j] * o[j * s_other];
        }
      });
    });
    return;
  }
  // Broadcast: accumulate in double, in output order (serial, so the sum is reproducible).
  thread_local ScratchBuffer scratch;
  double* acc = scratch.get<double>(self_numel);
  std::fill(acc, acc + self_numel, 0.0);
  const i64 s_self = self_is_a ? l.sa[last] : l.sb[last];
  for_each_segment(l, 0, p.numel, [&](i64 ia, i64 ib, i64 iy, i64 len) {
    const i64 is = self_is_a ? ia : ib, io = self_is_a ? ib : ia;
    const float* d = dy + iy;
    if (s_self == 0) {
      double total = 0.0;
      for (i64 j = 0; j < len; ++j) {
        total += pulled(f, d[j], f == GradFactor::Other ? other[io + j * s_other] : 0.f);
      }
      acc[is] += total;
    } else {
      for (i64 j = 0; j < len; ++j) {
        acc[is + j * s_self] +=
            pulled(f, d[j], f == GradFactor::Other ? other[io + j * s_other] : 0.f);
      }
    }
  });
  for (i64 i = 0; i < self_numel; ++i) grad[i] = static_cast<float>(acc[i]);
}

}  // namespace

void CpuBackend::binary_forward(
    BinaryOp op, const BroadcastParams& p, const float* a, const float* b, float* y) {
  if (p.numel == 0) return;
  switch (op) {
    case BinaryOp::Add:
      return binary_forward_impl<BinaryOp::Add>(p, a, b, y);
    case BinaryOp::Sub:
      return binary_forward_impl<BinaryOp::Sub>(p, a, b, y);
    case BinaryOp::Mul:
      return binary_forward_impl<BinaryOp::Mul>(p, a, b, y);
    case BinaryOp::Div:
      return binary_forward_impl<BinaryOp::Div>(p, a, b, y);
  }
}

void CpuBackend::binary_backward(BinaryOp op,
                                 const BroadcastParams& p,
                                 const float* a,
                                 const float* b,
                                 const float* dy,
                                 float* da,
                                 float* db) {
  if (p.numel == 0) {
    if (da != nullptr) std::fill(da, da + p.a_numel, 0.f);
    if (db != nullptr) std::fill(db, db + p.b_numel, 0.f);
    return;
  }
  if (op == BinaryOp::Div) {
    throw std::logic_error("[binary_backward] div's backward is composed from mul and sub");
  }
  const Layout l = coalesce(p);
  if (da != nullptr) {
    operand_backward(p, l, /*self_is_a=*/true, grad_factor(op, true), b, dy, da);
  }
  if (db != nullptr) {
    operand_backward(p, l, /*self_is_a=*/false, grad_factor(op, false), a, dy, db);
  }
}

void CpuBackend::unary_forward(UnaryOp op, const float* x, float* y, i64 n, float param) {
  thread_pool().parallel_for(0, n, kElementwiseGrain, [=](i64 begin, i64 end) {
    dispatch_unary(op, [&](auto tag) {
      for (i64 i = begin; i < end; ++i) y[i] = apply_unary<decltype(tag)::value>(x[i], param);
    });
  });
}

void CpuBackend::safe_div(
    const float* num, const float* den, const float* fallback, float eps, float* y, i64 n) {
  thread_pool().parallel_for(0, n, kElementwiseGrain, [=](i64 begin, i64 end) {
    for (i64 i = begin; i < end; ++i) {
      y[i] = std::fabs(den[i]) >= eps ? num[i] / den[i] : fallback[i];
    }
  });
}

void CpuBackend::relu_forward(const float* x, float* y, i64 n) {
  // NOTE: x < 0 ? 0 : x, not max(x, 0), so NaN propagates as in PyTorch.
  thread_pool().parallel_for(0, n, kElementwiseGrain, [=](i64 begin, i64 end) {
    const float* __restrict xr = x;
    float* __restrict yr = y;
    for (i64 i = begin; i < end; ++i) yr[i] = xr[i] < 0.f ? 0.f : xr[i];
  });
}

void CpuBackend::relu_backward(const float* x, const float* dy, float* dx, i64 n) {
  // restrict locals: without them the lambda reloads its captures every iteration and the loop
  // stays a scalar branch (mispredicted on random signs); with them it is a vector blend.
  thread_pool().parallel_for(0, n, kElementwiseGrain, [=](i64 begin, i64 end) {
    const float* __restrict xr = x;
    const float* __restrict dyr = dy;
    float* __restrict dxr = dx;
    for (i64 i = begin; i < end; ++i) dxr[i] = xr[i] > 0.f ? dyr[i] : 0.f;
  });
}

namespace {

// fn(plane, channel) for every plane (one channel of one row) of [outer, channels, inner], whole
// planes per thread.
template <class Fn>
void for_each_channel_plane(i64 outer, i64 channels, i64 inner, Fn&& fn) {
  const i64 grain = std::max<i64>(1, kElementwiseGrain / std::max<i64>(inner, 1));
  thread_pool().parallel_for(0, outer * channels, grain, [&](i64 begin, i64 end) {
    for (i64 plane = begin; plane < end; ++plane) fn(plane, plane % channels);
  });
}

}  // namespace

void CpuBackend::channel_affine_forward(const float* x,
                                        const float* scale,
                                        const float* shift,
                                        const float* addend,
                                        float* y,
                                        i64 outer,
                                        i64 channels,
                                        i64 inner,
                                        bool relu) {
  for_each_channel_plane(outer, channels, inner, [=](i64 plane, i64 c) {
    const float s = scale[c], b = shift[c];
    const float* __restrict xr = x + plane * inner;
    float* __restrict yr = y + plane * inner;
    // One rounding per operation (-ffp-contract=off), as mul, add (and add) one after another.
    if (addend != nullptr) {
      const float* __restrict ar = addend + plane * inner;
      for (i64 i = 0; i < inner; ++i) {
        const float v = xr[i] * s + b + ar[i];
        yr[i] = relu && v < 0.f ? 0.f : v;
      }
    } else if (relu) {
      for (i64 i = 0; i < inner; ++i) {
        const float v = xr[i] * s + b;
        yr[i] = v < 0.f ? 0.f : v;
      }
    } else {
      for (i64 i = 0; i < inner; ++i) yr[i] = xr[i] * s + b;
    }
  });
}

void CpuBackend::channel_affine_backward(const float* y,
                                         const float* dy,
                                         const float* scale,
                                         float* dx,
                                         float* d_addend,
                                         i64 outer,
                                         i64 channels,
                                         i64 inner) {
  for_each_channel_plane(outer, channels, inner, [=](i64 plane, i64 c) {
    const float s = scale[c];
    const float* __restrict dyr = dy + plane * inner;
    float* __restrict dxr = dx + plane * inner;
    if (d_addend != nullptr) {  // the residual's gradient: the same g, in the same pass
      const float* yr = y != nullptr ? y + plane * inner : nullptr;
      float* __restrict dar = d_addend + plane * inner;
      for (i64 i = 0; i < inner; ++i) {
        const float g = yr == nullptr || yr[i] > 0.f ? dyr[i] : 0.f;
        dar[i] = g;
        dxr[i] = g * s;
      }
    } else if (y != nullptr) {
      const float* __restrict yr = y + plane * inner;
      for (i64 i = 0; i < inner; ++i) dxr[i] = (yr[i] > 0.f ? dyr[i] : 0.f) * s;
    } else {
      for (i64 i = 0; i < inner; ++i) dxr[i] = dyr[i] * s;
    }
  });
}

void CpuBackend::normal_noise(
    const NoiseParams& p, const i64* stream, const i64* sample, const float* x, float* y) {
  ::gradlens::cpu::normal_noise(
      p, stream, sample, x, y);  // one copy for every variant: the same draws
}

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA
