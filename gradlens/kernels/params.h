// Plain parameter structs passed to the kernels: sizes only, no tensors, so .cu files can include
// them.
#pragma once

#include <math.h>  // the float functions (expf, tanhf) that device code has too

#include <cstdint>

#include "gradlens/export.h"

namespace gradlens {

// conv2d: x [n, c, h, w] * weight [k, c, r, s] (+ bias [k]) -> y [n, k, oh, ow]
struct GRADLENS_API Conv2dParams {
  std::int64_t n, c, h, w;  // input
  std::int64_t k, r, s;     // output channels, kernel height and width
  std::int64_t stride, padding;
  std::int64_t oh, ow;  // output height and width
  // A ReLU fused in: the forward writes relu(y) (from its registers, no second pass), and the
  // backward's dy is the gradient of relu(y), masked by y > 0 as it is read.
  bool relu = false;
};

// normal_noise: y[r, j] = x[r, j] + stdev * z, z = philox::normal(seed, stream[r], purpose,
// sample[r] * row_size + j) (kernels/philox.h): row r is sample `sample[r]` of stream `stream[r]`.
struct GRADLENS_API NoiseParams {
  std::uint64_t seed;
  std::uint32_t purpose;
  std::int64_t rows, row_size;
  float stdev;
};

// max_pool2d: x [n, c, h, w] -> y [n, c, oh, ow]; indices hold the flat h*w position of each
// maximum.
struct GRADLENS_API Pool2dParams {
  std::int64_t n, c, h, w;
  std::int64_t kernel, stride, padding;
  std::int64_t oh, ow;
};

/// Output size of a window sliding over `size` (the same rule for conv2d and max_pool2d).
inline std::int64_t window_output_size(std::int64_t size,
                                       std::int64_t window,
                                       std::int64_t stride,
                                       std::int64_t padding) {
  return (size + 2 * padding - window) / stride + 1;
}

/// The params with oh, ow derived from the rest (callers check the window fits first).
inline Conv2dParams make_conv2d_params(std::int64_t n,
                                       std::int64_t c,
                                       std::int64_t h,
                                       std::int64_t w,
                                       std::int64_t k,
                                       std::int64_t r,
                                       std::int64_t s,
                                       std::int64_t stride,
                                       std::int64_t padding) {
  return {n,
          c,
          h,
          w,
          k,
          r,
          s,
          stride,
          padding,
          window_output_size(h, r, stride, padding),
          window_output_size(w, s, stride, padding)};
}

inline Pool2dParams make_pool2d_params(std::int64_t n,
                                       std::int64_t c,
                                       std::int64_t h,
                                       std::int64_t w,
                                       std::int64_t kernel,
                                       std::int64_t stride,
                                       std::int64_t padding) {
  return {n,
          c,
          h,
          w,
          kernel,
          stride,
          padding,
          window_output_size(h, kernel, stride, padding),
          window_output_size(w, kernel, stride, padding)};
}

// Broadcasting of two operands to an output shape: a stride of 0 repeats that operand along a dim.
inline constexpr int kMaxDims = 8;
struct GRADLENS_API BroadcastParams {
  int ndim = 0;
  std::int64_t numel = 0;
  std::int64_t shape[kMaxDims] = {};
  std::int64_t a_strides[kMaxDims] = {};
  std::int64_t b_strides[kMaxDims] = {};
  std::int64_t a_numel = 0, b_numel = 0;
};

enum class BinaryOp : std::uint8_t { Add, Sub, Mul, Div };

// Callable from device code where nvcc compiles it, so the CPU and CUDA kernels share one
// definition of each op's arithmetic.
#if defined(__CUDACC__)
#define GRADLENS_HOST_DEVICE __host__ __device__
#else
#define GRADLENS_HOST_DEVICE
#endif

template <BinaryOp Op>
GRADLENS_HOST_DEVICE inline float apply_binary(float a, float b) {
  if constexpr (Op == BinaryOp::Add) {
    return a + b;
  } else if constexpr (Op == BinaryOp::Sub) {
    return a - b;
  } else if constexpr (Op == BinaryOp::Div) {
    return a / b;
  } else {
    return a * b;
  }
}

// y = f(x): |x|, x^2, sqrt(x), sign(x) (0 at 0), step(x) = (x > 0), LRP's stabiliser
// x + param * (x >= 0 ? 1 : -1), and the activations of imported models: exp, log, tanh,
// sigmoid, leaky_relu (slope param below 0), and clamp_min / clamp_max at param (NaN stays NaN).
enum class UnaryOp : std::uint8_t {
  Abs,
  Square,
  Sqrt,
  Sign,
  Step,
  Stabilize,
  Exp,
  Log,
  Tanh,
  Sigmoid,
  LeakyRelu,
  ClampMin,
  ClampMax
};

/// Every UnaryOp, for tests that try them all.
inline constexpr UnaryOp kAllUnaryOps[] = {UnaryOp::Abs,
                                           UnaryOp::Square,
                                           UnaryOp::Sqrt,
                                           UnaryOp::Sign,
                                           UnaryOp::Step,
                                           UnaryOp::Stabilize,
                                           UnaryOp::Exp,
                                           UnaryOp::Log,
                                           UnaryOp::Tanh,
                                           UnaryOp::Sigmoid,
                                           UnaryOp::LeakyRelu,
                                           UnaryOp::ClampMin,
                                           UnaryOp::ClampMax};

template <UnaryOp Op>
struct UnaryTag {
  static constexpr UnaryOp value = Op;
};

// The arithmetic of each UnaryOp, shared by the CPU kernels and their CUDA twins (the float
// functions of <math.h> exist on both sides).
template <UnaryOp Op>
GRADLENS_HOST_DEVICE inline float apply_unary(float v, float param) {
  if constexpr (Op == UnaryOp::Abs) {
    return fabsf(v);
  } else if constexpr (Op == UnaryOp::Square) {
    return v * v;
  } else if constexpr (Op == UnaryOp::Sqrt) {
    return sqrtf(v);
  } else if constexpr (Op == UnaryOp::Sign) {
    return static_cast<float>((v > 0.f) - (v < 0.f));
  } else if constexpr (Op == UnaryOp::Step) {
    return v > 0.f ? 1.f : 0.f;
  } else if constexpr (Op == UnaryOp::Stabilize) {
    return v + (v >= 0.f ? param : -param);
  } else if constexpr (Op == UnaryOp::Exp) {
    return expf(v);
  } else if constexpr (Op == UnaryOp::Log) {
    return logf(v);
  } else if constexpr (Op == UnaryOp::Tanh) {
    return tanhf(v);
  } else if constexpr (Op == UnaryOp::Sigmoid) {
    return 1.f / (1.f + expf(-v));
  } else if constexpr (Op == UnaryOp::LeakyRelu) {
    return v > 0.f ? v : v * param;
  } else if constexpr (Op == UnaryOp::ClampMin) {
    return v < param ? param : v;  // not fmaxf: a NaN input stays NaN, as in PyTorch
  } else {
    return v > param ? param : v;
  }
}

/// Calls fn(std::integral_constant<UnaryOp, op>{}): one switch, outside the kernels' loops.
template <typename Fn>
inline void dispatch_unary(UnaryOp op, Fn&& fn) {
  switch (op) {
#define GRADLENS_UNARY_CASE(name)  \
  case UnaryOp::name:              \
    fn(UnaryTag<UnaryOp::name>{}); \
    break;
    GRADLENS_UNARY_CASE(Abs)
    GRADLENS_UNARY_CASE(Square)
    GRADLENS_UNARY_CASE(Sqrt)
    GRADLENS_UNARY_CASE(Sign)
    GRADLENS_UNARY_CASE(Step)
    GRADLENS_UNARY_CASE(Stabilize)
    GRADLENS_UNARY_CASE(Exp)
    GRADLENS_UNARY_CASE(Log)
    GRADLENS_UNARY_CASE(Tanh)
    GRADLENS_UNARY_CASE(Sigmoid)
    GRADLENS_UNARY_CASE(LeakyRelu)
    GRADLENS_UNARY_CASE(ClampMin)
    GRADLENS_UNARY_CASE(ClampMax)
#undef GRADLENS_UNARY_CASE
  }
}

// torch.optim.SGD: g = grad + weight_decay * p; buf = first ? g : momentum * buf + (1 - dampening)
// * g; g = nesterov ? g + momentum * buf : buf; p -= lr * g.
struct GRADLENS_API SgdParams {
  float lr = 0.001f, momentum = 0.f, dampening = 0.f, weight_decay = 0.f;
  bool nesterov = false;
  bool first_step = true;  // the momentum buffer starts as a copy of the first gradient
};

}  // namespace gradlens
