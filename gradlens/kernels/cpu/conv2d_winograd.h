// conv2d's 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray,
// 2015): each 2x2 output tile from a 4x4 input tile in 16 multiplies per channel pair instead of
// 36, the 16 products of all channel pairs being 16 small matrix products (micro::correlate). The
// forward and, as the correlation of the padded dy with the flipped weights, dx. Compiled per ISA.
#pragma once

#include "gradlens/kernels/cpu/cpu_backend.h"
#include "gradlens/kernels/params.h"

namespace gradlens::cpu::GRADLENS_CPU_ISA {

/// Whether conv2d with these params (forward, or dx alone when `input_grad`) runs by Winograd: a
/// 3x3 stride-1 kernel with enough channels that the transforms pay for themselves, on an ISA
/// with FMA.
bool winograd_applies(const Conv2dParams& p, bool input_grad);

/// y = conv2d(x, w) + b (b may be null), relu(y) when p.relu.
void winograd_forward(
    const Conv2dParams& p, const float* x, const float* w, const float* b, float* y);

/// dx of conv2d from dy; with p.relu, dy masked where the forward's output y is not positive.
void winograd_input_grad(
    const Conv2dParams& p, const float* w, const float* y, const float* dy, float* dx);

}  // namespace gradlens::cpu::GRADLENS_CPU_ISA
