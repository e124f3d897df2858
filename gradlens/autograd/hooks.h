// Backward overrides: while a BackwardOverrideGuard lives, every node whose name() matches uses the
// given rule instead of its own backward. Rules attach to ops on the tape, not to module objects,
// so a relu used twice or written as a plain function gets the same rule (DeepLift,
// GuidedBackprop).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "gradlens/autograd/node.h"

namespace gradlens {

using BackwardRule = std::function<std::vector<Tensor>(
    Node& node, const Tensor& grad_out, const std::vector<bool>& needs)>;

class BackwardOverrideGuard {
 public:
  BackwardOverrideGuard(std::string op_name, BackwardRule rule);
  ~BackwardOverrideGuard();
  BackwardOverrideGuard(const BackwardOverrideGuard&) = delete;
  BackwardOverrideGuard& operator=(const BackwardOverrideGuard&) = delete;

 private:
  std::string op_name_;
};

/// The innermost active rule for `op_name` on this thread, or null.
const BackwardRule* find_backward_override(std::string_view op_name);
/// Whether any rule is active on this thread: a model fuses ops (conv2d + relu) only when none is,
/// since a rule may look for the separate ops on the tape.
bool any_backward_override();

}  // namespace gradlens
