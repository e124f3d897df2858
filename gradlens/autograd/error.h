// GRADLENS_CHECK(cond, parts...): caller mistakes become std::invalid_argument("[op] ...").
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "gradlens/export.h"

namespace gradlens::detail {

template <class... Parts>
[[noreturn]] void throw_invalid(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw std::invalid_argument(message.str());
}

/// The op running on this thread, for errors raised below it (a device out of memory names the op
/// that asked, not just the size). Nested scopes restore the outer name.
class GRADLENS_API OpScope {
 public:
  explicit OpScope(std::string_view op) : outer_(current_) { current_ = op; }
  ~OpScope() { current_ = outer_; }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;
  static std::string_view current() { return current_; }

 private:
  std::string_view outer_;
  static inline thread_local std::string_view current_;
};

}  // namespace gradlens::detail

#define GRADLENS_CHECK(cond, ...)                                \
  do {                                                           \
    if (!(cond)) ::gradlens::detail::throw_invalid(__VA_ARGS__); \
  } while (0)
