// SGD with momentum, dampening, weight decay and Nesterov, with torch.optim.SGD's semantics: the
// momentum buffer starts as a copy of the first gradient.
#pragma once

#include <map>
#include <string>
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
  /// The momentum buffers that exist, by their parameter's name (checkpoints).
  std::map<std::string, Tensor> momentum_buffers() const;
  /// Sets the buffers of the named parameters (copied to each parameter's device); a name that is
  /// not a parameter, or a shape that differs from it, throws std::invalid_argument naming it.
  void load_momentum_buffers(const std::map<std::string, Tensor>& buffers);

 private:
  std::vector<Parameter> params_;
  std::vector<Tensor> buffers_;
  SGDOptions options_;
};

}  // namespace gradlens::nn
