// The public op list: one declaration per op with its shapes. Each op checks its arguments
// (std::invalid_argument naming the op and the shapes), runs the kernel of its inputs' device and,
// in grad mode, records a Node whose backward sits next to the forward in autograd/ops/<file>.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "gradlens/autograd/tensor.h"
#include "gradlens/export.h"

namespace gradlens {

// --- elementwise (ops/elementwise.cpp) ---
// a, b broadcast as in PyTorch (trailing dims aligned, size-1 dims repeat): [N,C,H,W] + [C,H,W],
// [N,C,H,W] * [N,1,1,1], [N,D] - [1,D], x + scalar tensor [].
GRADLENS_API Tensor add(const Tensor& a, const Tensor& b);
GRADLENS_API Tensor sub(const Tensor& a, const Tensor& b);
GRADLENS_API Tensor mul(const Tensor& a, const Tensor& b);
// x * alpha + beta, any shape
GRADLENS_API Tensor affine(const Tensor& x, float alpha, float beta);
inline Tensor add_scalar(const Tensor& x, float s) { return affine(x, 1.f, s); }
inline Tensor mul_scalar(const Tensor& x, float s) { return affine(x, s, 0.f); }
inline Tensor neg(const Tensor& x) { return affine(x, -1.f, 0.f); }
// relu(x) = max(x, 0), any shape; derivative 0 at 0
GRADLENS_API Tensor relu(const Tensor& x);
// x [N, C, ...] * scale[c] + shift[c] along dim 1 (as mul then add), plus `addend` (x's shape)
// when given (as a third add), then relu(.) when `relu`: inference BatchNorm, with its residual
// block's sum and ReLU, in one pass. scale and shift [C] are constants (no gradient reaches them).
// Recorded as "channel_affine" (linear), "channel_affine_relu", "channel_affine_add" (linear) or
// "channel_affine_add_relu": fuse the add and the ReLU only when no backward rule is active.
GRADLENS_API Tensor channel_affine(const Tensor& x,
                                   const Tensor& scale,
                                   const Tensor& shift,
                                   bool relu = false,
                                   const Tensor& addend = Tensor());
// a / b with broadcasting
GRADLENS_API Tensor div(const Tensor& a, const Tensor& b);
// elementwise, any shape: |x|, x^2, sqrt(x), sign(x) (0 at 0), step(x) = (x > 0 ? 1 : 0)
GRADLENS_API Tensor abs(const Tensor& x);
GRADLENS_API Tensor square(const Tensor& x);
GRADLENS_API Tensor sqrt(const Tensor& x);
GRADLENS_API Tensor sign(const Tensor& x);
GRADLENS_API Tensor step(const Tensor& x);
// The activations of imported models: e^x, ln x, tanh, 1 / (1 + e^-x), x > 0 ? x : slope * x,
// and min(max(x, lo), hi) (a NaN stays NaN).
GRADLENS_API Tensor exp(const Tensor& x);
GRADLENS_API Tensor log(const Tensor& x);
GRADLENS_API Tensor tanh(const Tensor& x);
GRADLENS_API Tensor sigmoid(const Tensor& x);
GRADLENS_API Tensor leaky_relu(const Tensor& x, float slope);
GRADLENS_API Tensor clamp(const Tensor& x, float lo, float hi);
// x + eps * (x >= 0 ? 1 : -1): LRP's epsilon stabiliser (never 0 for eps > 0)
GRADLENS_API Tensor stabilize(const Tensor& x, float eps);
// num / den where |den| >= eps, else fallback (same shapes): DeepLift's rescale multiplier
GRADLENS_API Tensor safe_div(const Tensor& num,
                             const Tensor& den,
                             float eps,
                             const Tensor& fallback);

// --- reductions (ops/reduce.cpp) ---
GRADLENS_API Tensor sum(const Tensor& x);   // any shape -> []
GRADLENS_API Tensor mean(const Tensor& x);  // any shape -> []
// sum / mean over one dim, which is removed: [A, D, B] -> [A, B] for dim 1
GRADLENS_API Tensor sum_dim(const Tensor& x, std::int64_t dim);
/// x [N, C] -> the index of each row's largest value (the first on ties; a NaN wins, as
/// torch.argmax), on the host.
GRADLENS_API std::vector<std::int64_t> argmax_rows(const Tensor& x);
GRADLENS_API Tensor mean_dim(const Tensor& x, std::int64_t dim);

// --- shape and batch (ops/shape.cpp) ---
// reshape / view: same storage, one size may be -1
GRADLENS_API Tensor reshape(const Tensor& x, Shape shape);
inline Tensor view(const Tensor& x, Shape shape) { return reshape(x, std::move(shape)); }
// x [N, ...] rows start..end-1 -> [end-start, ...], a view
GRADLENS_API Tensor slice(const Tensor& x, std::int64_t start, std::int64_t end);
// along dim 0: [N1, ...] ++ [N2, ...] -> [N1+N2, ...]
GRADLENS_API Tensor cat(const std::vector<Tensor>& xs);
// x [N, ...] + stdev * z, z the standard normal draws of kernels/philox.h: row r gets draws
// samples[r] * row_size + j of stream (seed, streams[r], purpose), made on x's device. Not
// recorded.
GRADLENS_API Tensor normal_noise(const Tensor& x,
                                 std::span<const std::int64_t> streams,
                                 std::span<const std::int64_t> samples,
                                 float stdev,
                                 std::uint64_t seed,
                                 std::uint32_t purpose);
// --- layout (ops/gather.cpp): any rank, each one gather on the tensor's device ---
// y.flat[i] = index[i] >= 0 ? x.flat[index[i]] : fill, y of `shape`; no element read twice
GRADLENS_API Tensor gather(const Tensor& x,
                           Shape shape,
                           std::vector<std::int64_t> index,
                           float fill);
// The same with an index made once for a layout applied call after call (a grouped conv's weight):
// its inverse and its copy on each device are made once and kept with it.
struct GatherIndex;
GRADLENS_API std::shared_ptr<const GatherIndex> make_gather_index(std::vector<std::int64_t> index,
                                                                  const Shape& in_shape);
GRADLENS_API Tensor gather(const Tensor& x,
                           Shape shape,
                           const std::shared_ptr<const GatherIndex>& index,
                           float fill);
// dims reordered: y dim d is x dim order[d] (ONNX Transpose, numpy.transpose)
GRADLENS_API Tensor permute(const Tensor& x, const std::vector<std::int64_t>& order);
// before[d] / after[d] elements of `value` added at each end of dim d (negative: cropped)
GRADLENS_API Tensor pad(const Tensor& x,
                        const std::vector<std::int64_t>& before,
                        const std::vector<std::int64_t>& after,
                        float value = 0.f);
// sizes[d] elements of dim d from starts[d], every steps[d]-th
GRADLENS_API Tensor strided_slice(const Tensor& x,
                                  const std::vector<std::int64_t>& starts,
                                  const std::vector<std::int64_t>& sizes,
                                  const std::vector<std::int64_t>& steps);
// factors[d] - 1 zeros between neighbours along dim d (a dilated conv kernel)
GRADLENS_API Tensor spread(const Tensor& x, const std::vector<std::int64_t>& factors);
// along any axis (negative counts from the end); the rest of the shapes must agree
GRADLENS_API Tensor concat(const std::vector<Tensor>& xs, std::int64_t axis);
// x [N, ...], rows picked by index (repeats allowed) -> [index.size(), ...]
GRADLENS_API Tensor index_rows(const Tensor& x, std::span<const std::int64_t> index);
// x [N, C] -> [N]: x[i, index[i]] (attribution targets)
GRADLENS_API Tensor pick(const Tensor& x, std::span<const std::int64_t> index);

// --- layers (ops/linear.cpp, ops/conv2d.cpp, ops/pool.cpp) ---
// x [N, in], weight [out, in], bias [out] (optional) -> [N, out]
GRADLENS_API Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});
// x [N, C, H, W], weight [K, C, R, S], bias [K] (optional) -> [N, K, OH, OW],
// OH = (H + 2 * padding - R) / stride + 1
GRADLENS_API Tensor conv2d(const Tensor& x,
                           const Tensor& weight,
                           const Tensor& bias = {},
                           std::int64_t stride = 1,
                           std::int64_t padding = 0);
// relu(conv2d(...)) in one op (the ReLU in the kernels' epilogue and its mask in the backward's
// prologue); recorded as "conv2d_relu", so use it only when no backward rule is active.
GRADLENS_API Tensor conv2d_relu(const Tensor& x,
                                const Tensor& weight,
                                const Tensor& bias = {},
                                std::int64_t stride = 1,
                                std::int64_t padding = 0);
// max_pool2d(relu(conv2d(...)), 2) in one op, the conv's output never stored (the tutorial's conv,
// ReLU and pool; needs OH, OW >= 2); recorded as "conv2d_relu_pool", so use it only when no
// backward rule is active. The same values as the three ops, forward and backward.
GRADLENS_API Tensor conv2d_relu_pool(const Tensor& x,
                                     const Tensor& weight,
                                     const Tensor& bias = {},
                                     std::int64_t stride = 1,
                                     std::int64_t padding = 0);
// x [N, C, H, W] -> [N, C, OH, OW]; stride defaults to kernel; first maximum wins (PyTorch)
GRADLENS_API Tensor max_pool2d(const Tensor& x,
                               std::int64_t kernel,
                               std::int64_t stride = 0,
                               std::int64_t padding = 0);

// --- softmax and loss (ops/loss.cpp) ---
// along the last dim of x [..., C]
GRADLENS_API Tensor softmax(const Tensor& x);
GRADLENS_API Tensor log_softmax(const Tensor& x);
// logits [N, C], targets N integers in [0, C) -> [] mean over the batch (CrossEntropyLoss)
GRADLENS_API Tensor cross_entropy(const Tensor& logits, std::span<const std::int64_t> targets);

}  // namespace gradlens
