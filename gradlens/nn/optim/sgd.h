// SGD with momentum, dampening, weight decay and Nesterov, with torch.optim.SGD's semantics: the
// momentum buffer starts as a copy of the first gradient.
#pragma once

#include <vector>

#include "gradlens/export.h"
#include "gradlens/nn/module.h"

namespace gradlens::nn {

struct GRADLENS_API SGDOptions {
  float lr = 0.001f;
  float momentum = 0.f;
  float dampening = 0.f;
  float weight_decay = 0.f;
  bool nesterov = false;
};

class GRADLENS_API SGD {
 public:
  SGD(std::vector<Parameter> params, SGDOptions options);
  /// One update of every parameter that has a gradient (no tape is recorded).
  void step();
  void zero_grad();
  /// The momentum buffer of parameter i (undefined before the first step).
  const Tensor& momentum_buffer(std::size_t i) const { return buffers_.at(i); }
  const std::vector<Parameter>& params() const { return params_; }

 private:
  std::vector<Parameter> params_;
  std::vector<Tensor> buffers_;
  SGDOptions options_;
};

}  // namespace gradlens::nn
