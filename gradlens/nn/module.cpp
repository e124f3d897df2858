#include "gradlens/nn/module.h"

#include <set>

#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"

namespace gradlens::nn {

Tensor Module::operator()(const Tensor& x) {
  Tensor out = forward(x);
  for (const auto& [id, hook] : hooks_) out = hook(x, out);
  return out;
}

int Module::add_forward_hook(ForwardHook hook) {
  hooks_.emplace_back(next_hook_id_, std::move(hook));
  return next_hook_id_++;
}

void Module::remove_forward_hook(int id) {
  std::erase_if(hooks_, [id](const auto& entry) { return entry.first == id; });
}

Module* Module::find(const std::string& path) {
  const auto dot = path.find('.');
  const std::string head = path.substr(0, dot);
  for (auto& [name, child] : children_) {
    if (name != head) continue;
    return dot == std::string::npos ? child.get() : child->find(path.substr(dot + 1));
  }
  return nullptr;
}

std::vector<std::string> Module::module_names() const {
  std::vector<std::string> out;
  for (const auto& [name, child] : children_) {
    out.push_back(name);
    for (const auto& sub : child->module_names()) out.push_back(name + "." + sub);
  }
  return out;
}

Tensor& Module::register_parameter(std::string name, Tensor tensor) {
  tensor.set_requires_grad(true);
  params_.emplace_back(std::move(name), std::move(tensor));
  return params_.back().second;
}

void Module::collect(const std::string& prefix, std::vector<Parameter>& out) const {
  for (const auto& [name, tensor] : params_) out.push_back({prefix + name, tensor});
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

std::vector<Parameter> Module::parameters() const {
  std::vector<Parameter> out;
  collect("", out);
  return out;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (const auto& p : parameters()) out.emplace(p.name, p.tensor);
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state) {
  const auto params = parameters();
  std::set<std::string> expected;
  // Check everything before touching anything, so a bad file leaves the model as it was.
  for (const auto& p : params) {
    expected.insert(p.name);
    auto it = state.find(p.name);
    GRADLENS_CHECK(it != state.end(),
                   "[load_state_dict] missing tensor '",
                   p.name,
                   "' (expected ",
                   shape_str(p.tensor.shape()),
                   ")");
    GRADLENS_CHECK(it->second.shape() == p.tensor.shape(),
                   "[load_state_dict] tensor '",
                   p.name,
                   "' has shape ",
                   shape_str(it->second.shape()),
                   ", the model expects ",
                   shape_str(p.tensor.shape()));
  }
  for (const auto& [name, tensor] : state) {
    GRADLENS_CHECK(expected.count(name),
                   "[load_state_dict] unexpected tensor '",
                   name,
                   "' ",
                   shape_str(tensor.shape()),
                   " (not a parameter of this model)");
  }
  for (const auto& p : params) p.tensor.copy_(state.at(p.name));
}

void Module::to(Device device) {
  for (auto& p : parameters()) {
    if (p.tensor.device() == device) continue;
    // Swap the storage inside the shared impl, so every handle to the parameter sees the move.
    Tensor moved = p.tensor.to(device);
    p.tensor.impl()->storage = moved.storage();
    p.tensor.impl()->offset = moved.offset();
    p.tensor.zero_grad();
  }
}

void Module::zero_grad() {
  for (auto& p : parameters()) p.tensor.zero_grad();
}

std::vector<std::int64_t> predict(Module& model, const Tensor& x) {
  NoGradGuard no_grad;
  return argmax_rows(model(x));
}

}  // namespace gradlens::nn
