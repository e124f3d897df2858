// Node: one tape entry. An op records a Node (only in grad mode, and only when an input requires
// grad); the Node keeps its inputs as graph edges and the detached tensors its backward needs.
#pragma once

#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/op_ids.h"
#include "gradlens/autograd/tensor.h"
#include "gradlens/export.h"

namespace gradlens {

struct GRADLENS_API Node {
  virtual ~Node() = default;
  std::vector<Tensor> inputs;  // graph edges, in argument order

  /// The op's name, Ops::<op>.name() ("conv2d"): used in errors and to look up backward
  /// overrides (hooks.h).
  virtual std::string_view name() const = 0;
  /// Gradient for each input; an undefined Tensor where needs[i] is false or there is none.
  virtual std::vector<Tensor> backward(const Tensor& grad_out, const std::vector<bool>& needs) = 0;
};

/// True when an op on these inputs must be recorded.
inline bool should_record(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::enabled()) return false;
  for (const Tensor* t : inputs) {
    if (t->defined() && t->requires_grad()) return true;
  }
  return false;
}

/// Attaches `node` (with its edges) as the grad_fn of `out`, which then requires grad.
template <class NodeT>
void record(const Tensor& out, std::shared_ptr<NodeT> node, std::vector<Tensor> inputs) {
  node->inputs = std::move(inputs);
  out.set_grad_fn(std::move(node));
}

}  // namespace gradlens
