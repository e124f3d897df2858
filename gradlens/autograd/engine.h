// Reverse-mode sweep over the tape: backward() accumulates into leaves' .grad; grad() returns the
// gradients of chosen inputs and touches no .grad (attribution methods are built on it).
#pragma once

#include <vector>

#include "gradlens/autograd/tensor.h"
#include "gradlens/export.h"

namespace gradlens {

/// d(sum_k <outputs[k], grad_outputs[k]>) / d inputs[j], for each j. A scalar output may omit its
/// grad_output (seed 1). Inputs may be leaves or intermediate tensors; an input the outputs do not
/// depend on gets zeros. Only the nodes on a path to an input are run.
GRADLENS_API std::vector<Tensor> grad(const std::vector<Tensor>& outputs,
                                      const std::vector<Tensor>& inputs,
                                      const std::vector<Tensor>& grad_outputs = {});

/// Accumulates d root / d leaf into every leaf that requires grad (root must be a scalar unless
/// seed is given, with root's shape).
GRADLENS_API void backward(const Tensor& root, const Tensor& seed = {});

}  // namespace gradlens
