// BroadcastLayout: a BroadcastParams with size-1 dims dropped and mergeable neighbours merged, so
// that [N,C,H,W] op [C,H,W] becomes [N, CHW] and the innermost dim is contiguous or a scalar. The
// CPU and CUDA broadcast kernels both walk this layout (host code, C++17-clean for nvcc).
#pragma once

#include "gradlens/kernels/params.h"

namespace gradlens {

struct BroadcastLayout {
  int ndim = 0;
  std::int64_t shape[kMaxDims] = {};
  std::int64_t sa[kMaxDims] = {};
  std::int64_t sb[kMaxDims] = {};
};

inline BroadcastLayout coalesce(const BroadcastParams& p) {
  BroadcastLayout l;
  for (int d = 0; d < p.ndim; ++d) {
    const std::int64_t size = p.shape[d];
    if (size == 1) continue;
    const int prev = l.ndim - 1;
    if (prev >= 0 && l.sa[prev] == size * p.a_strides[d] && l.sb[prev] == size * p.b_strides[d]) {
      l.shape[prev] *= size;
      l.sa[prev] = p.a_strides[d];
      l.sb[prev] = p.b_strides[d];
    } else {
      l.shape[l.ndim] = size;
      l.sa[l.ndim] = p.a_strides[d];
      l.sb[l.ndim] = p.b_strides[d];
      ++l.ndim;
    }
  }
  if (l.ndim == 0) {  // every dim is 1: one element
    l.ndim = 1;
    l.shape[0] = 1;
  }
  return l;
}

// What dy is multiplied by to give an operand's gradient in a binary op's backward (add, sub and
// mul; div's backward is composed from them): 1, -1 or the other operand.
enum class GradFactor { One, MinusOne, Other };

inline GradFactor grad_factor(BinaryOp op, bool for_a) {
  if (op == BinaryOp::Mul) return GradFactor::Other;
  return op == BinaryOp::Sub && !for_a ? GradFactor::MinusOne : GradFactor::One;
}

// The pulled-back gradient dy * factor (`other` is read only for GradFactor::Other).
GRADLENS_HOST_DEVICE inline float pulled(GradFactor f, float dy, float other) {
  return f == GradFactor::One ? dy : f == GradFactor::MinusOne ? -dy : dy * other;
}

}  // namespace gradlens
