#include "gradlens/autograd/hooks.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <set>
#include <stdexcept>
#include <utility>

namespace gradlens {

namespace {
// Innermost guard last; a short vector beats a map for the one or two rules a method installs.
thread_local std::vector<std::pair<OpId, BackwardRule>> active_rules;

struct Coverage {
  std::string method;
  std::vector<OpId> plain;
  bool allow_plain_gradient;
};
thread_local std::vector<Coverage> active_coverage;
}  // namespace

BackwardOverrideGuard::BackwardOverrideGuard(OpId op, BackwardRule rule) : op_(op) {
  active_rules.emplace_back(op, std::move(rule));
}

BackwardOverrideGuard::~BackwardOverrideGuard() {
  for (auto it = active_rules.rbegin(); it != active_rules.rend(); ++it) {
    if (it->first == op_) {
      active_rules.erase(std::next(it).base());
      return;
    }
  }
}

const BackwardRule* find_backward_override(std::string_view op_name) {
  for (auto it = active_rules.rbegin(); it != active_rules.rend(); ++it) {
    if (it->first.name() == op_name) return &it->second;
  }
  return nullptr;
}

bool any_backward_override() { return !active_rules.empty(); }

RuleCoverageGuard::RuleCoverageGuard(std::string_view method,
                                     std::vector<OpId> plain,
                                     bool allow_plain_gradient) {
  active_coverage.push_back({std::string(method), std::move(plain), allow_plain_gradient});
}

RuleCoverageGuard::~RuleCoverageGuard() { active_coverage.pop_back(); }

namespace {

// mul and div are linear, and their plain gradient a multiplier, when the other operand (the
// divisor) is off the tape: a constant weight.
bool linear_use(const Node& node) {
  const std::string_view op = node.name();
  if (op == Ops::mul.name()) {
    return std::count_if(node.inputs.begin(), node.inputs.end(), [](const Tensor& t) {
             return t.defined() && t.requires_grad();
           }) <= 1;
  }
  if (op == Ops::div.name()) return !(node.inputs[1].defined() && node.inputs[1].requires_grad());
  return true;
}

}  // namespace

void check_rule_coverage(const Node& node) {
  if (active_coverage.empty()) return;
  const Coverage& c = active_coverage.back();
  const std::string_view op_name = node.name();
  if (std::any_of(c.plain.begin(), c.plain.end(), [&](OpId op) { return op.name() == op_name; }) &&
      linear_use(node)) {
    return;
  }
  const std::string what = "[" + c.method + "] op '" + std::string(op_name) + "' has no " +
                           c.method + " rule, and its plain gradient is not what " + c.method +
                           " means";
  if (!c.allow_plain_gradient) {
    throw UncoveredOpError(what + " (allow_plain_gradient takes it anyway, with a warning)");
  }
  static std::mutex mutex;
  static std::set<std::string> warned;
  const std::lock_guard<std::mutex> lock(mutex);
  if (warned.insert(c.method + "/" + std::string(op_name)).second) {
    std::fprintf(stderr, "gradlens: warning: %s; taking its plain gradient\n", what.c_str());
  }
}

}  // namespace gradlens
