// normal_noise on the CPU (params.h), compiled once for every ISA variant: the draws must not
// depend on which variant runs, so this code gets no FMA contraction (baseline x86-64 flags).
#pragma once

#include <cstdint>

#include "gradlens/kernels/params.h"

namespace gradlens::cpu {

void normal_noise(const NoiseParams& p,
                  const std::int64_t* stream,
                  const std::int64_t* sample,
                  const float* x,
                  float* y);

}  // namespace gradlens::cpu
