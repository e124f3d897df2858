// The command line's side of the method registry (gradlens/attr/registry.h): one flag per option
// name of any method (n_steps: --n-steps), generated from the registry, so a method's options
// reach the command line without a line here. Also the small parsers the subcommands share
// (byte sizes "512M", index ranges "0:16").
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "gradlens/attr/registry.h"

namespace gradlens::cli {

class MethodFlags {
 public:
  /// Adds the flags of every method's options, and NoiseTunnel's, to `cmd`.
  void add_to(CLI::App* cmd);
  /// The flags given on the command line, by option name, into args.values.
  void collect(attr::MethodArgs& args) const;
  /// fn(), with an attr::OptionError reworded to start with the option's flag (--n-steps: ...).
  template <class Fn>
  static auto in_flag_terms(Fn&& fn) {
    try {
      return fn();
    } catch (const attr::OptionError& e) {
      throw std::invalid_argument(flag_name(e.option()) + ": " + e.what());
    }
  }
  /// n_steps -> --n-steps
  static std::string flag_name(std::string_view option);

 private:
  std::map<std::string, std::string> text_;  // Text, Int, Float, Bool, Shape options
  std::map<std::string, bool> switches_;     // Switch options (flags without a value)
  std::map<std::string, CLI::Option*> options_;
};

/// "512M", "2G", "64KiB", "1048576" -> bytes (K/M/G/T are powers of 1024).
std::size_t parse_bytes(const std::string& text, const std::string& flag);
/// "0:16", "3", "0,3,5", "0:4,9" or "all" -> indices, each in [0, limit).
std::vector<std::int64_t> parse_indices(const std::string& text,
                                        std::int64_t limit,
                                        const std::string& flag);

}  // namespace gradlens::cli
