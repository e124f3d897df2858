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

}  // namespace gradlens::cli
