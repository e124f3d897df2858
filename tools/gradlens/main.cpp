// gradlens: train, eval, attribute, methods, report, data, info and shards subcommands in one
// program. Every failure is one line on stderr and a non-zero exit, never a crash.
#include <cstdio>
#include <exception>

#include "gradlens/kernels/build_info.h"
#include "tools/gradlens/commands.h"
#include "tools/gradlens/shards.h"

int main(int argc, char** argv) {
  CLI::App app{"gradlens: train the CIFAR-10 tutorial Net and explain its predictions"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "gradlens " + gradlens::build_info().version);
  gradlens::cli::add_data_command(app);
  gradlens::cli::add_train_command(app);
  gradlens::cli::add_eval_command(app);
  gradlens::cli::add_attribute_command(app);
  gradlens::cli::add_methods_command(app);
  gradlens::cli::add_report_command(app);
  gradlens::cli::add_info_command(app);
  gradlens::cli::add_shards_command(app);
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
