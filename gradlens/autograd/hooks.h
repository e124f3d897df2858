// Backward overrides: while a BackwardOverrideGuard lives, every node whose name() matches uses the
// given rule instead of its own backward. Rules attach to ops on the tape, not to module objects,
// so a relu used twice or written as a plain function gets the same rule (DeepLift,
// GuidedBackprop).
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "gradlens/autograd/node.h"
#include "gradlens/autograd/op_ids.h"
#include "gradlens/export.h"

namespace gradlens {

using BackwardRule = std::function<std::vector<Tensor>(
    Node& node, const Tensor& grad_out, const std::vector<bool>& needs)>;

class GRADLENS_API BackwardOverrideGuard {
 public:
  BackwardOverrideGuard(OpId op, BackwardRule rule);
  ~BackwardOverrideGuard();
  BackwardOverrideGuard(const BackwardOverrideGuard&) = delete;
  BackwardOverrideGuard& operator=(const BackwardOverrideGuard&) = delete;

 private:
  OpId op_;
};

/// The innermost active rule for the op named `op_name` on this thread, or null.
GRADLENS_API const BackwardRule* find_backward_override(std::string_view op_name);
inline const BackwardRule* find_backward_override(OpId op) {
  return find_backward_override(op.name());
}
/// Whether any rule is active on this thread: a model fuses ops (conv2d + relu) only when none is,
/// since a rule may look for the separate ops on the tape.
GRADLENS_API bool any_backward_override();

/// A modified-backward method's promise that its rules cover the model: while the guard lives,
/// every op a backward pass on this thread meets must have an active rule or be in `plain` (ops
/// whose plain gradient is what the method means, Ops::structural and the like). Any other op is
/// an error naming it and `method`; with allow_plain_gradient, a warning on stderr, once per op
/// and method, and the plain gradient.
class GRADLENS_API RuleCoverageGuard {
 public:
  RuleCoverageGuard(std::string_view method, std::vector<OpId> plain, bool allow_plain_gradient);
  ~RuleCoverageGuard();
  RuleCoverageGuard(const RuleCoverageGuard&) = delete;
  RuleCoverageGuard& operator=(const RuleCoverageGuard&) = delete;
};

/// What check_rule_coverage throws: the method cannot explain this model as it stands (a report
/// skips the method, naming the op).
class GRADLENS_API UncoveredOpError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Called by the backward sweep for each node without a rule; throws or warns as above. Ops::mul
/// and Ops::div in `plain` cover only their linear use: a product or quotient by a tensor that is
/// off the tape.
GRADLENS_API void check_rule_coverage(const Node& node);

}  // namespace gradlens
