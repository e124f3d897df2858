#include "gradlens/autograd/hooks.h"

#include <utility>

namespace gradlens {

namespace {
// Innermost guard last; a short vector beats a map for the one or two rules a method installs.
thread_local std::vector<std::pair<std::string, BackwardRule>> active_rules;
}  // namespace

BackwardOverrideGuard::BackwardOverrideGuard(std::string op_name, BackwardRule rule)
    : op_name_(op_name) {
  active_rules.emplace_back(std::move(op_name), std::move(rule));
}

BackwardOverrideGuard::~BackwardOverrideGuard() {
  for (auto it = active_rules.rbegin(); it != active_rules.rend(); ++it) {
    if (it->first == op_name_) {
      active_rules.erase(std::next(it).base());
      return;
    }
  }
}

const BackwardRule* find_backward_override(std::string_view op_name) {
  for (auto it = active_rules.rbegin(); it != active_rules.rend(); ++it) {
    if (it->first == op_name) return &it->second;
  }
  return nullptr;
}

bool any_backward_override() { return !active_rules.empty(); }

}  // namespace gradlens
