// The GPU twins of kernels/cpu/elementwise.cpp: fill, affine, unary ops, safe_div, relu, the
// per-channel affine map and the broadcasting binary ops. Broadcast backward reduces each operand
// element over the positions it was repeated to, one warp (or one block, for long reductions) per
// element, in a fixed order.
#include "gradlens/kernels/broadcast.h"
#include "gradlens/kernels/cuda/cuda_backend.cuh"
#include "gradlens/kernels/cuda/launch.cuh"

namespace gradlens::cuda {

namespace {

// Offsets of output position i into a and b.
// In the launch's index type: int below 2^30 elements (a and b are no larger than the output).
template <class I>
__device__ inline void broadcast_offsets(const BroadcastLayout& l, I i, I& ia, I& ib) {
  ia = 0;
  ib = 0;
  for (int d = l.ndim - 1; d >= 0; --d) {
    const I extent = static_cast<I>(l.shape[d]);
    const I c = i % extent;
    i /= extent;
    ia += c * static_cast<I>(l.sa[d]);
    ib += c * static_cast<I>(l.sb[d]);
  }
}

template <BinaryOp Op>
struct Flat {
  const float *a, *b;
  float* y;
  __device__ void operator()(i64 i) const { y[i] = apply_binary<Op>(a[i], b[i]); }
};

template <BinaryOp Op>
struct Broadcast {
  BroadcastLayout l;
  const float *a, *b;
  float* y;
  template <class I>
  __device__ void operator()(I i) const {
    I ia, ib;
    broadcast_offsets(l, i, ia, ib);
    y[i] = apply_binary<Op>(a[ia], b[ib]);
  }
};

template <BinaryOp Op>
void binary_forward_impl(
    cudaStream_t stream, const BroadcastParams& p, const float* a, const float* b, float* y) {
  if (p.a_numel == p.numel && p.b_numel == p.numel) {
    launch_map(stream, "binary_forward", p.numel, Flat<Op>{a, b, y});
  } else {
    launch_map(stream, "binary_forward", p.numel, Broadcast<Op>{coalesce(p), a, b, y});
  }
}

// The operand is not broadcast: its gradient is elementwise in output order.
struct PullBack {
  BroadcastLayout l;
  bool self_is_a;
  GradFactor f;
  const float *other, *dy;
  float* grad;
  template <class I>
  __device__ void operator()(I i) const {
    I ia = 0, ib = 0;
    if (f == GradFactor::Other) broadcast_offsets(l, i, ia, ib);
    grad[i] = pulled(f, dy[i], f == GradFactor::Other ? other[self_is_a ? ib : ia] : 0.f);
  }
};

// A broadcast operand: each of its elements sums over the output positions that repeat it. The
// layout's dims split into kept ones (the operand's stride is not 0) and reduced ones.
struct ReducePlan {
  int kept = 0, reduced = 0;
  i64 kept_shape[kMaxDims], kept_out[kMaxDims], kept_self[kMaxDims], kept_other[kMaxDims];
  i64 red_shape[kMaxDims], red_out[kMaxDims], red_other[kMaxDims];
  i64 reduce_count = 1;
};

ReducePlan plan_reduction(const BroadcastLayout& l, bool self_is_a) {
  ReducePlan r;
  i64 out_stride = 1;
  i64 out_strides[kMaxDims];
  for (int d = l.ndim - 1; d >= 0; --d) {
    out_strides[d] = out_stride;
    out_stride *= l.shape[d];
  }
  for (int d = 0; d < l.ndim; ++d) {
    const i64 s_self = self_is_a ? l.sa[d] : l.sb[d];
    const i64 s_other = self_is_a ? l.sb[d] : l.sa[d];
    if (s_self != 0) {
      r.kept_shape[r.kept] = l.shape[d];
      r.kept_out[r.kept] = out_strides[d];
      r.kept_self[r.kept] = s_self;
      r.kept_other[r.kept] = s_other;
      ++r.kept;
    } else {
      r.red_shape[r.reduced] = l.shape[d];
      r.red_out[r.reduced] = out_strides[d];
      r.red_other[r.reduced] = s_other;
      r.reduce_count *= l.shape[d];
      ++r.reduced;
    }
  }
  return r;
}

// One group of Group threads (a warp or the whole block) per operand element, looping over the
// reduced positions in output order and summing the lanes' partials by a fixed tree.
template <int Group>
__global__ void reduce_operand_kernel(
    ReducePlan r, i64 self_numel, GradFactor f, const float* other, const float* dy, float* grad) {
  __shared__ float shared[kWarp];
  const int groups_per_block = blockDim.x / Group;
  const int lane = threadIdx.x % Group;
  const i64 first = blockIdx.x * i64{groups_per_block} + threadIdx.x / Group;
  const i64 step = i64{gridDim.x} * groups_per_block;
  // Every thread of a block runs the same number of iterations (block_sum syncs the block).
  const i64 rounds = (self_numel + step - 1) / step;
  for (i64 round = 0; round < rounds; ++round) {
    const i64 e = first + round * step;
    float acc = 0.f;
    i64 self_at = 0;
    if (e < self_numel) {
      i64 out_base = 0, other_base = 0, rest = e;
      for (int d = r.kept - 1; d >= 0; --d) {
        const i64 c = rest % r.kept_shape[d];
        rest /= r.kept_shape[d];
        out_base += c * r.kept_out[d];
        other_base += c * r.kept_other[d];
        self_at += c * r.kept_self[d];
      }
      for (i64 q = lane; q < r.reduce_count; q += Group) {
        i64 out = out_base, io = other_base, rest_q = q;
        for (int d = r.reduced - 1; d >= 0; --d) {
          const i64 c = rest_q % r.red_shape[d];
          rest_q /= r.red_shape[d];
          out += c * r.red_out[d];
          io += c * r.red_other[d];
        }
        acc += pulled(f, dy[out], f == GradFactor::Other ? other[io] : 0.f);
      }
    }
    if constexpr (Group == kWarp) {
      acc = warp_sum(acc);
    } else {
      acc = block_sum(acc, shared);
    }
    if (lane == 0 && e < self_numel) grad[self_at] = acc;
  }
}

void operand_backward(cudaStream_t stream,
                      const BroadcastParams& p,
                      const BroadcastLayout& l,
                      bool self_is_a,
                      GradFactor f,
                      const float* other,
                      const float* dy,
                      float* grad) {
  const i64 self_numel = self_is_a ? p.a_numel : p.b_numel;
  if (self_numel == p.numel) {
    launch_map(stream, "binary_backward", p.numel, PullBack{l, self_is_a, f, other, dy, grad});
    return;
  }
  const ReducePlan r = plan_reduction(l, self_is_a);
  if (r.reduce_count >= 4096) {  // few, long sums: a block each
    reduce_operand_kernel<kThreads>
        <<<grid_for(self_numel, 1), kThreads, 0, stream>>>(r, self_numel, f, other, dy, grad);
  } else {
    constexpr int kGroups = kThreads / kWarp;
    reduce_operand_kernel<kWarp>
        <<<grid_for(self_numel, kGroups), kThreads, 0, stream>>>(r, self_numel, f, other, dy, grad);
  }
  check_launch(stream, "binary_backward", {p.numel, self_numel});
}

struct Fill {
  float* y;
  float value;
  __device__ void operator()(i64 i) const { y[i] = value; }
};

struct Affine {
  const float* x;
  float alpha, beta;
  float* y;
  // Two roundings, as the CPU twin: no FMA contraction, so alpha == 1 or beta == 0 are exact.
  __device__ void operator()(i64 i) const { y[i] = __fadd_rn(__fmul_rn(alpha, x[i]), beta); }
};

template <UnaryOp Op>
struct Unary {
  const float* x;
  float* y;
  float param;
  __device__ void operator()(i64 i) const { y[i] = apply_unary<Op>(x[i], param); }
};

struct SafeDiv {
  const float *num, *den, *fallback;
  float eps;
  float* y;
  __device__ void operator()(i64 i) const {
    y[i] = fabsf(den[i]) >= eps ? num[i] / den[i] : fallback[i];
  }
};

struct Relu {
  const float* x;
  float* y;
  // x < 0 ? 0 : x, not fmaxf: NaN propagates as in PyTorch.
  __device__ void operator()(i64 i) const { y[i] = x[i] < 0.f ? 0.f : x[i]; }
};

struct ReluBackward {
  const float *x, *dy;
  float* dx;
  __device__ void operator()(i64 i) const { dx[i] = x[i] > 0.f ? dy[i] : 0.f; }
};

// Plane = i / inner, channel = plane % channels; one rounding per operation, as the CPU twin.
struct ChannelAffine {
  const float *x, *scale, *shift, *addend;
  float* y;
  i64 channels, inner;
  bool relu;
  __device__ void operator()(i64 i) const {
    const i64 c = (i / inner) % channels;
    float v = __fadd_rn(__fmul_rn(x[i], scale[c]), shift[c]);
    if (addend != nullptr) v = __fadd_rn(v, addend[i]);
    y[i] = relu && v < 0.f ? 0.f : v;
  }
};

struct ChannelAffineBackward {
  const float *y, *dy, *scale;
  float *dx, *d_addend;
  i64 channels, inner;
  __device__ void operator()(i64 i) const {
    const float g = y == nullptr || y[i] > 0.f ? dy[i] : 0.f;
    if (d_addend != nullptr) d_addend[i] = g;
    dx[i] = __fmul_rn(g, scale[(i / inner) % channels]);
  }
};

}  // namespace

void CudaBackend::fill(float* y, float value, i64 n) {
  launch_map(stream(), "fill", n, Fill{y, value});
}

void CudaBackend::affine(const float* x, float alpha, float beta, float* y, i64 n) {
  launch_map(stream(), "affine", n, Affine{x, alpha, beta, y});
}

void CudaBackend::unary_forward(UnaryOp op, const float* x, float* y, i64 n, float param) {
  dispatch_unary(op, [&](auto tag) {
    launch_map(stream(), "unary_forward", n, Unary<decltype(tag)::value>{x, y, param});
  });
}

void CudaBackend::safe_div(
    const float* num, const float* den, const float* fallback, float eps, float* y, i64 n) {
  launch_map(stream(), "safe_div", n, SafeDiv{num, den, fallback, eps, y});
}

void CudaBackend::relu_forward(const float* x, float* y, i64 n) {
  launch_map(stream(), "relu_forward", n, Relu{x, y});
}

void CudaBackend::relu_backward(const float* x, const float* dy, float* dx, i64 n) {
  launch_map(stream(), "relu_backward", n, ReluBackward{x, dy, dx});
}

void CudaBackend::channel_affine_forward(const float* x,
                                         const float* scale,
                                         const float* shift,
                                         const float* addend,
                                         float* y,
                                         i64 outer,
                                         i64 channels,
                                         i64 inner,
                                         bool relu) {
  launch_map(stream(),
             "channel_affine_forward",
             outer * channels * inner,
             ChannelAffine{x, scale, shift, addend, y, channels, inner, relu});
}

void CudaBackend::channel_affine_backward(const float* y,
                                          const float* dy,
                                          const float* scale,
                                          float* dx,
                                          float* d_addend,
                                          i64 outer,
                                          i64 channels,
                                          i64 inner) {
  launch_map(stream(),
             "channel_affine_backward",
             outer * channels * inner,
             ChannelAffineBackward{y, dy, scale, dx, d_addend, channels, inner});
}

void CudaBackend::binary_forward(
    BinaryOp op, const BroadcastParams& p, const float* a, const float* b, float* y) {
  if (p.numel == 0) return;
  switch (op) {
    case BinaryOp::Add:
      return binary_forward_impl<BinaryOp::Add>(stream(), p, a, b, y);
    case BinaryOp::Sub:
      return binary_forward_impl<BinaryOp::Sub>(stream(), p, a, b, y);
    case BinaryOp::Mul:
      return binary_forward_impl<BinaryOp::Mul>(stream(), p, a, b, y);
    case BinaryOp::Div:
      return binary_forward_impl<BinaryOp::Div>(stream(), p, a, b, y);
  }
}

void CudaBackend::binary_backward(BinaryOp op,
                                  const BroadcastParams& p,
                                  const float* a,
                                  const float* b,
                                  const float* dy,
                                  float* da,
                                  float* db) {
  if (p.numel == 0) {
    if (da != nullptr) fill(da, 0.f, p.a_numel);
    if (db != nullptr) fill(db, 0.f, p.b_numel);
    return;
  }
  if (op == BinaryOp::Div) {
    throw std::logic_error("[binary_backward] div's backward is composed from mul and sub");
  }
  const BroadcastLayout l = coalesce(p);
  if (da != nullptr) {
    operand_backward(stream(), p, l, /*self_is_a=*/true, grad_factor(op, true), b, dy, da);
  }
  if (db != nullptr) {
    operand_backward(stream(), p, l, /*self_is_a=*/false, grad_factor(op, false), a, dy, db);
  }
}

}  // namespace gradlens::cuda
