// Direct stride-1 conv2d kernels (AVX2 + FMA) over "wide" rows: with the input padded to width wp,
// output p = oh * wp + ow reads input p + c * plane + r * wp + s, so every (c, r, s) is one
// contiguous run and no im2col matrix is built; columns ow >= OW of the wide output are discarded.
#pragma once

#include <cstdint>

namespace gradlens::cpu::direct {

using i64 = std::int64_t;

/// True when these kernels were compiled (AVX2 and FMA enabled); else callers use im2col + GEMM.
bool available();

/// Floats past the last input plane that the kernels may read (they only feed discarded outputs
/// or are multiplied by zeros); callers zero them.
i64 input_tail(i64 s);

/// Smallest row stride of a wide output of `count` positions (room for the tile overrun).
i64 output_stride(i64 count);

/// offsets[(c * r + i) * s + j] = c * plane + i * wp + j
void make_offsets(i64 c, i64 r, i64 s, i64 plane, i64 wp, i64* offsets);

/// w [k, crs] -> the register-block layout correlate() reads.
void pack_weights(const float* w, i64 k, i64 crs, float* packed);

/// out[o, p] = bias[o] + sum_i w[o, i] * in[p + offsets[i]] for p in [0, count), o in [0, k);
/// out rows are ld >= output_stride(count) apart, each written up to output_stride(count);
/// bias may be null.
void correlate(const float* in,
               const i64* offsets,
               i64 crs,
               const float* packed_w,
               const float* bias,
               i64 k,
               i64 count,
               i64 ld,
               float* out);

/// dw[o, i] += sum_p dyw[o, p] * in[p + offsets[i]] over p in [0, count), with dyw rows ld apart
/// and zero at every discarded position up to round8(count).
void weight_grad(const float* dyw,
                 i64 ld,
                 i64 k,
                 const float* in,
                 const i64* offsets,
                 i64 crs,
                 i64 count,
                 float* dw);

/// out[q] += sum_j rows[j * ld + q - j] for q in [0, count + n - 1): the col2im of n taps one
/// column apart. rows[j * ld + t] must be 0 for t in [-n - 8, 0) and [count, count + n + 8), and
/// out writable up to count + n + 8.
void add_shifted_rows(const float* rows, i64 ld, i64 n, i64 count, float* out);

}  // namespace gradlens::cpu::direct
