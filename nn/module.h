// Module: a layer or model with named parameters (PyTorch's state_dict names: "conv1.weight").
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace gradlens::nn {

struct Parameter {
  std::string name;  // dotted path, as in PyTorch's named_parameters()
  Tensor tensor;
};

class Module {
 public:
  virtual ~Module() = default;
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  /// Every parameter of this module and its children, in registration order.
  std::vector<Parameter> parameters() const;
  /// name -> tensor (shares storage with the parameters).
  std::map<std::string, Tensor> state_dict() const;
  /// Copies every parameter from `state`; a missing, extra or wrongly shaped tensor is an error
  /// naming it (nothing is changed then).
  void load_state_dict(const std::map<std::string, Tensor>& state);
  /// Moves every parameter to `device`.
  void to(Device device);
  void zero_grad();

 protected:
  Tensor& register_parameter(std::string name, Tensor tensor);
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    children_.emplace_back(std::move(name), module);
    return module;
  }

 private:
  void collect(const std::string& prefix, std::vector<Parameter>& out) const;
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

}  // namespace gradlens::nn
