// gradlens methods: every attribution method of the registry (attr/registry.h) with its Captum
// class, traits and options (default, range, choices), as text or, with --json, for scripts
// (bench/compare.py takes its method list from it).
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "gradlens/attr/registry.h"
#include "tools/gradlens/commands.h"
#include "tools/gradlens/method_flags.h"

namespace gradlens::cli {

namespace {

const char* type_name(attr::OptionType type) {
  switch (type) {
    case attr::OptionType::Int:
      return "int";
    case attr::OptionType::Float:
      return "float";
    case attr::OptionType::Bool:
      return "bool";
    case attr::OptionType::Switch:
      return "switch";
    case attr::OptionType::Text:
      return "text";
    case attr::OptionType::Shape:
      return "shape";
  }
  return "?";
}

const char* baselines_name(attr::Baselines b) {
  switch (b) {
    case attr::Baselines::None:
      return "none";
    case attr::Baselines::PerInput:
      return "per_input";
    case attr::Baselines::Distribution:
      return "distribution";
  }
  return "?";
}

nlohmann::json option_json(const attr::OptionSpec& s) {
  nlohmann::json o = {{"name", s.name},
                      {"flag", MethodFlags::flag_name(s.name)},
                      {"type", type_name(s.type)},
                      {"default", s.default_value},
                      {"help", s.help}};
  if (std::isfinite(s.min)) o["min"] = s.min;
  if (std::isfinite(s.max)) o["max"] = s.max;
  if (!s.choices.empty()) o["choices"] = s.choices;
  if (!s.captum.empty()) o["captum"] = s.captum;
  return o;
}

void run_methods(bool json) {
  nlohmann::json all = nlohmann::json::array();
  for (const attr::MethodInfo& m : attr::methods()) {
    nlohmann::json options = nlohmann::json::array();
    for (const attr::OptionSpec& s : m.options) options.push_back(option_json(s));
    all.push_back({{"name", m.name},
                   {"captum_class", m.captum_class},
                   {"baselines", baselines_name(m.baselines)},
                   {"takes_layer", m.takes_layer},
                   {"layer_output", m.layer_output},
                   {"stochastic", m.stochastic},
                   {"has_delta", m.has_delta},
                   {"perturbation", m.perturbation},
                   {"options", options}});
  }
  nlohmann::json tunnel = nlohmann::json::array();
  for (const attr::OptionSpec& s : attr::noise_tunnel_options()) tunnel.push_back(option_json(s));
  if (json) {
    std::printf("%s\n", nlohmann::json{{"methods", all}, {"noise_tunnel", tunnel}}.dump(2).c_str());
    return;
  }
  auto print_options = [](const nlohmann::json& options) {
    for (const auto& o : options) {
      std::string range;
      if (o.contains("choices")) range = " {" + o["choices"].get<std::string>() + "}";
      if (o.contains("min") || o.contains("max")) {
        auto bound = [&](const char* key, const char* open) {
          if (!o.contains(key)) return std::string(open);
          char text[32];
          std::snprintf(text, sizeof text, "%g", o[key].get<double>());
          return std::string(text);
        };
        range = " [" + bound("min", "-inf") + ", " + bound("max", "inf") + "]";
      }
      std::printf(
          "    %-26s %-6s default %-14s%s  %s\n",
          o["flag"].get<std::string>().c_str(),
          o["type"].get<std::string>().c_str(),
          o["default"].get<std::string>().empty() ? "-" : o["default"].get<std::string>().c_str(),
          range.c_str(),
          o["help"].get<std::string>().c_str());
    }
  };
  for (const auto& m : all) {
    std::printf("%s (Captum %s): baselines %s%s%s%s\n",
                m["name"].get<std::string>().c_str(),
                m["captum_class"].get<std::string>().c_str(),
                m["baselines"].get<std::string>().c_str(),
                m["takes_layer"].get<bool>() ? ", takes a layer" : "",
                m["stochastic"].get<bool>() ? ", random draws" : "",
                m["has_delta"].get<bool>() ? ", convergence delta" : "");
    print_options(m["options"]);
  }
  std::printf("noise tunnel, around any method:\n");
  print_options(tunnel);
}

}  // namespace

void add_methods_command(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "methods", "list the attribution methods with their options, defaults and ranges");
  cmd->add_flag("--json", *json, "as JSON, for scripts");
  cmd->callback([json] { run_methods(*json); });
}

}  // namespace gradlens::cli
