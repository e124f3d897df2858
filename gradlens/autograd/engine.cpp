// The reverse sweep: order the nodes reachable from the outputs, keep only those on a path to a
// wanted tensor, then run each node's backward (or an active override, hooks.h) once, root first.
#include "gradlens/autograd/engine.h"

#include <unordered_map>
#include <unordered_set>

#include "gradlens/autograd/error.h"
#include "gradlens/autograd/hooks.h"
#include "gradlens/autograd/node.h"
#include "gradlens/autograd/ops.h"

namespace gradlens {

namespace {

// Post-order (inputs before users) over every node reachable from the roots.
std::vector<Node*> topological_order(const std::vector<Node*>& roots) {
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, std::size_t>> stack;
  for (Node* root : roots) {
    if (!root || !seen.insert(root).second) continue;
    stack.emplace_back(root, 0);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < node->inputs.size()) {
        Node* child = node->inputs[next++].grad_fn().get();
        if (child && seen.insert(child).second) stack.emplace_back(child, 0);
      } else {
        order.push_back(node);
        stack.pop_back();
      }
    }
  }
  return order;
}

void accumulate(Tensor& acc, const Tensor& g) { acc = acc.defined() ? add(acc, g) : g; }

// wanted: tensors whose gradient is captured (functional grad); empty in backward() mode, where
// every leaf that requires grad receives its gradient in .grad instead.
std::vector<Tensor> run_backward(const std::vector<Tensor>& outputs,
                                 const std::vector<Tensor>& seeds,
                                 const std::vector<Tensor>& wanted,
                                 bool accumulate_leaves) {
  NoGradGuard no_grad;  // gradients themselves are never recorded (no double backward)
  std::unordered_map<const TensorImpl*, std::size_t> wanted_index;
  for (std::size_t j = 0; j < wanted.size(); ++j) wanted_index.emplace(wanted[j].impl(), j);
  std::vector<Tensor> captured(wanted.size());

  std::vector<Node*> roots;
  for (const Tensor& out : outputs) roots.push_back(out.grad_fn().get());
  const std::vector<Node*> order = topological_order(roots);

  // needs[node][i]: whether input i of node leads to something that wants a gradient.
  std::unordered_map<Node*, std::vector<bool>> needs;
  std::unordered_set<Node*> useful;
  for (Node* node : order) {
    std::vector<bool> mask(node->inputs.size(), false);
    bool any = false;
    for (std::size_t i = 0; i < node->inputs.size(); ++i) {
      const Tensor& in = node->inputs[i];
      if (!in.defined()) continue;
      const bool is_wanted = wanted_index.count(in.impl()) > 0;
      const bool leaf_target = accumulate_leaves && in.is_leaf() && in.requires_grad();
      const bool through = in.grad_fn() && useful.count(in.grad_fn().get()) > 0;
      mask[i] = is_wanted || leaf_target || through;
      any = any || mask[i];
    }
    if (any) useful.insert(node);
    needs.emplace(node, std::move(mask));
  }

  std::unordered_map<Node*, Tensor> grads;
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    if (auto it = wanted_index.find(outputs[k].impl()); it != wanted_index.end()) {
      accumulate(captured[it->second], seeds[k]);
    }
    if (Node* root = outputs[k].grad_fn().get()) accumulate(grads[root], seeds[k]);
  }

  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    auto found = grads.find(node);
    if (found == grads.end() || !useful.count(node)) continue;
    const Tensor grad_out = std::move(found->second);
    grads.erase(found);
    const std::vector<bool>& mask = needs[node];
    const BackwardRule* rule = find_backward_override(node->name());
    if (rule == nullptr) check_rule_coverage(*node);
    const std::string scope_name = std::string(node->name()) + " backward";
    const detail::OpScope scope(scope_name);
    std::vector<Tensor> input_grads =
        rule ? (*rule)(*node, grad_out, mask) : node->backward(grad_out, mask);
    GRADLENS_CHECK(input_grads.size() == node->inputs.size(),
                   "[backward] ",
                   node->name(),
                   " returned ",
                   input_grads.size(),
                   " gradients for ",
                   node->inputs.size(),
                   " inputs");
    for (std::size_t i = 0; i < node->inputs.size(); ++i) {
      if (!mask[i] || !input_grads[i].defined()) continue;
      const Tensor& in = node->inputs[i];
      const Tensor& g = input_grads[i];
      GRADLENS_CHECK(g.shape() == in.shape(),
                     "[backward] ",
                     node->name(),
                     " gave a gradient of shape ",
                     shape_str(g.shape()),
                     " for input ",
                     i,
                     " of shape ",
                     shape_str(in.shape()));
      if (auto w = wanted_index.find(in.impl()); w != wanted_index.end()) {
        accumulate(captured[w->second], g);
      }
      if (in.grad_fn()) {
        if (useful.count(in.grad_fn().get())) accumulate(grads[in.grad_fn().get()], g);
      } else if (accumulate_leaves && in.requires_grad()) {
        Tensor acc = in.grad();
        accumulate(acc, g);
        in.set_grad(acc);
      }
    }
  }
  return captured;
}

Tensor default_seed(const Tensor& out) {
  GRADLENS_CHECK(out.numel() == 1,
                 "[backward] an output of shape ",
                 shape_str(out.shape()),
                 " needs an explicit grad_output (only scalars get the implicit seed 1)");
  return Tensor::full(out.shape(), 1.f, out.device());
}

}  // namespace

std::vector<Tensor> grad(const std::vector<Tensor>& outputs,
                         const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs) {
  GRADLENS_CHECK(!outputs.empty(), "[grad] no outputs given");
  GRADLENS_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(),
                 "[grad] ",
                 grad_outputs.size(),
                 " grad_outputs for ",
                 outputs.size(),
                 " outputs");
  std::vector<Tensor> seeds;
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    const Tensor& out = outputs[k];
    GRADLENS_CHECK(out.defined(), "[grad] output ", k, " is undefined");
    if (grad_outputs.empty() || !grad_outputs[k].defined()) {
      seeds.push_back(default_seed(out));
    } else {
      GRADLENS_CHECK(grad_outputs[k].shape() == out.shape(),
                     "[grad] grad_output ",
                     k,
                     " has shape ",
                     shape_str(grad_outputs[k].shape()),
                     ", output has ",
                     shape_str(out.shape()));
      seeds.push_back(grad_outputs[k]);
    }
  }
  for (std::size_t j = 0; j < inputs.size(); ++j) {
    GRADLENS_CHECK(inputs[j].defined() && inputs[j].requires_grad(),
                   "[grad] input ",
                   j,
                   " does not require grad (call set_requires_grad() before the forward pass)");
  }
  std::vector<Tensor> result = run_backward(outputs, seeds, inputs, false);
  for (std::size_t j = 0; j < inputs.size(); ++j) {
    if (!result[j].defined()) result[j] = Tensor::zeros(inputs[j].shape(), inputs[j].device());
  }
  return result;
}

void backward(const Tensor& root, const Tensor& seed) {
  GRADLENS_CHECK(root.defined(), "[backward] undefined tensor");
  GRADLENS_CHECK(root.requires_grad(),
                 "[backward] the tensor does not require grad: nothing recorded it");
  Tensor s = seed.defined() ? seed : default_seed(root);
  GRADLENS_CHECK(s.shape() == root.shape(),
                 "[backward] seed shape ",
                 shape_str(s.shape()),
                 " differs from ",
                 shape_str(root.shape()));
  if (root.is_leaf()) {  // backward on a leaf itself: its gradient is the seed
    Tensor acc = root.grad();
    accumulate(acc, s);
    root.set_grad(acc);
    return;
  }
  run_backward({root}, {s}, {}, true);
}

}  // namespace gradlens
