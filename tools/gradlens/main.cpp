// gradlens: train, eval, attribute, methods, report, data, info and shards subcommands in one
// program. Every failure is one line on stderr and a non-zero exit, never a crash.
#include <cstdio>
#include <exception>

#include "tools/gradlens/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"gradlens: train the CIFAR-10 tutorial Net and explain its predictions"};
  gradlens::cli::add_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gradlens: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
