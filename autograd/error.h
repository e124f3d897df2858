// GRADLENS_CHECK(cond, parts...): caller mistakes become std::invalid_argument("[op] ...").
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace gradlens::detail {

template <class... Parts>
[[noreturn]] void throw_invalid(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw std::invalid_argument(message.str());
}

}  // namespace gradlens::detail

#define GRADLENS_CHECK(cond, ...)                                \
  do {                                                           \
    if (!(cond)) ::gradlens::detail::throw_invalid(__VA_ARGS__); \
  } while (0)
