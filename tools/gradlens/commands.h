// Subcommands of the gradlens program: each file adds its own to the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

namespace gradlens::cli {

void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_data_command(CLI::App& app);
void add_attribute_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_methods_command(CLI::App& app);
/// The whole program's command line: every subcommand above, shards and --version.
void add_commands(CLI::App& app);

/// Parse-only mode (fuzz/fuzz_cli.cpp): each subcommand checks its flags as a run would, then
/// returns before it reads or writes a file.
void set_parse_only(bool on);
bool parse_only();

}  // namespace gradlens::cli
