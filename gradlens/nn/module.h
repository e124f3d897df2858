// Module: a layer or model with named parameters (PyTorch's state_dict names: "conv1.weight").
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gradlens/autograd/tensor.h"
#include "gradlens/export.h"

namespace gradlens::nn {

struct GRADLENS_API Parameter {
  std::string name;  // dotted path, as in PyTorch's named_parameters()
  Tensor tensor;
};

class GRADLENS_API Module {
 public:
  virtual ~Module() = default;
  /// Calls the module: forward(), then every forward hook in order (a hook may replace the
  /// output). The only way in, so a child's hooks run however a model is written.
  Tensor operator()(const Tensor& x);

  /// Sees (input, output) of each call and returns the output to use (layer attribution methods
  /// capture a layer's activation this way). Returns an id for remove_forward_hook().
  using ForwardHook = std::function<Tensor(const Tensor& input, const Tensor& output)>;
  int add_forward_hook(ForwardHook hook);
  void remove_forward_hook(int id);
  bool has_forward_hooks() const { return !hooks_.empty(); }

  /// The submodule at a dotted path ("conv2", "block.fc"), or null.
  Module* find(const std::string& path);
  /// Dotted paths of every submodule, in registration order.
  std::vector<std::string> module_names() const;

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
  /// What the module computes. Protected: calling child->forward(x) would skip the child's hooks
  /// (and layer methods would not see it run); call (*child)(x).
  virtual Tensor forward(const Tensor& x) = 0;
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
  std::vector<std::pair<int, ForwardHook>> hooks_;
  int next_hook_id_ = 0;
};

/// The class each row of x is predicted as: argmax of model(x), without recording a tape.
GRADLENS_API std::vector<std::int64_t> predict(Module& model, const Tensor& x);

/// RAII: a forward hook on `module` for the guard's lifetime.
class GRADLENS_API ForwardHookGuard {
 public:
  ForwardHookGuard(Module& module, Module::ForwardHook hook)
      : module_(module), id_(module.add_forward_hook(std::move(hook))) {}
  ~ForwardHookGuard() { module_.remove_forward_hook(id_); }
  ForwardHookGuard(const ForwardHookGuard&) = delete;
  ForwardHookGuard& operator=(const ForwardHookGuard&) = delete;

 private:
  Module& module_;
  int id_;
};

}  // namespace gradlens::nn
