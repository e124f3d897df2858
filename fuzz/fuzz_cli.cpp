// libFuzzer target: the gradlens command line, parsed as the program parses it (CLI11 with every
// subcommand's flags, then each subcommand's own checks) in parse-only mode, which stops before any
// file is read or written. An input is the argument list, arguments separated by NUL bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "tools/gradlens/commands.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // `methods` and --help print pages: not what is being tested.
  if (std::freopen("/dev/null", "w", stdout) == nullptr) __builtin_trap();
  gradlens::cli::set_parse_only(true);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args{"gradlens"};
  std::string current;
  for (std::size_t i = 0; i < size && args.size() < 64; ++i) {
    if (data[i] == 0) {
      args.push_back(current);
      current.clear();
    } else {
      current.push_back(static_cast<char>(data[i]));
    }
  }
  if (!current.empty() && args.size() < 64) args.push_back(current);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  CLI::App app{"gradlens"};
  gradlens::cli::add_commands(app);
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError&) {
    // A refused command line, as the program reports it.
  } catch (const std::exception&) {
    // A subcommand's own refusal ("--n-steps: ..."): one line and exit 1 in the program.
  }
  return 0;
}
