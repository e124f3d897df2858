// Register-blocked SIMD kernels shared by conv2d and linear, compiled once per ISA (simd.h). Within
// a variant every output element is one fixed sequence of FMAs over its reduction index, whatever
// the batch size, the tiling or the thread split, so results are reproducible and a row's output
// does not depend on its neighbours. Over-reads are bounded by simd::kMaxLanes, the same for all.
// conv2d uses them on "wide" rows: with the input padded to width wp, output p = oh * wp + ow
// reads input p + c * plane + r * wp + s, so each tap (c, r, s) is one contiguous run.
#pragma once

#include <cstdint>

#include "gradlens/kernels/cpu/cpu_backend.h"

namespace gradlens::cpu::GRADLENS_CPU_ISA::micro {

using i64 = std::int64_t;

/// Floats past a padded conv input that weight_grad and the wide conv taps may read (they only
/// feed discarded outputs or meet zeros); callers zero them.
i64 input_tail(i64 s);

/// A row stride with room for weight_grad's zeros up to count rounded up to kMaxLanes, plus slack.
i64 output_stride(i64 count);

/// offsets[(c * r + i) * s + j] = c * plane + i * wp + j
void make_offsets(i64 c, i64 r, i64 s, i64 plane, i64 wp, i64* offsets);

/// w [k, taps] -> the register-block layout correlate() reads.
void pack_weights(const float* w, i64 k, i64 taps, float* packed);

/// out[o * ld + p] = bias[o] + sum_t w[o, t] * in[p + offsets[t]] (t in order) for p < count,
/// o < k; bias may be null. Reads and writes nothing past p = count - 1.
void correlate(const float* in,
               const i64* offsets,
               i64 taps,
               const float* packed_w,
               const float* bias,
               i64 k,
               i64 count,
               i64 ld,
               float* out);

/// The positions of correlate's full tiles for these taps and k rows: a count that is a multiple
/// of it runs its first block of rows (all of them when k is a multiple of the block) with no
/// masked tail.
i64 correlate_tile_width(const i64* offsets, i64 taps, i64 k);

/// dw[o, t] += sum_p dyw[o * ld + p] * in[p + offsets[t]] over p < count, with dyw zero at every
/// discarded position up to count rounded up to kMaxLanes (reads that far).
void weight_grad(const float* dyw,
                 i64 ld,
                 i64 k,
                 const float* in,
                 const i64* offsets,
                 i64 taps,
                 i64 count,
                 float* dw);

/// out[i * ldo + o] = sum_j a[i * lda + j] * b[o * ldb + j] (+ bias[o]) over j < len, for i < na,
/// o < nb: row-by-row dot products (linear's forward); bias may be null.
void dot_rows(const float* a,
              i64 lda,
              i64 na,
              const float* b,
              i64 ldb,
              i64 nb,
              i64 len,
              const float* bias,
              float* out,
              i64 ldo);

/// out[q] += sum_j rows[j * ld + q - j] for q in [0, count + n - 1): the col2im of n taps one
/// column apart. rows[j * ld + t] must be 0 for t in [-n - kMaxLanes, 0) and
/// [count, count + n + kMaxLanes), and out writable up to count + n + kMaxLanes.
void add_shifted_rows(const float* rows, i64 ld, i64 n, i64 count, float* out);

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA::micro
