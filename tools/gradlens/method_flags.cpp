#include "tools/gradlens/method_flags.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <stdexcept>
#include <string_view>

namespace gradlens::cli {

namespace {

[[noreturn]] void bad(const std::string& message) { throw std::invalid_argument(message); }

std::int64_t parse_int(std::string_view text, const std::string& flag) {
  std::int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty())
    bad(flag + ": '" + std::string(text) + "' is not an integer");
  return v;
}

}  // namespace

std::string MethodFlags::flag_name(std::string_view option) {
  std::string flag = "--" + std::string(option);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

void MethodFlags::add_to(CLI::App* cmd) {
  // Each option name once, with the methods that take it and its default where they agree.
  struct Seen {
    const attr::OptionSpec* spec;
    std::string users;
    bool same_default = true;
  };
  std::vector<std::pair<std::string, Seen>> seen;
  auto add = [&seen](const attr::OptionSpec& s, std::string_view user) {
    auto it = std::find_if(seen.begin(), seen.end(), [&](auto& e) { return e.first == s.name; });
    if (it == seen.end()) {
      seen.push_back({std::string(s.name), Seen{&s, std::string(user), true}});
      return;
    }
    it->second.users += ", " + std::string(user);
    if (it->second.spec->default_value != s.default_value) it->second.same_default = false;
  };
  for (const attr::MethodInfo& m : attr::methods()) {
    for (const attr::OptionSpec& s : m.options) add(s, m.name);
  }
  for (const attr::OptionSpec& s : attr::noise_tunnel_options()) add(s, "noise tunnel");

  for (const auto& [name, e] : seen) {
    const attr::OptionSpec& s = *e.spec;
    std::string help = e.users + ": " + std::string(s.help);
    if (!s.choices.empty()) help += " (" + std::string(s.choices) + ")";
    if (!s.captum.empty()) help += " [Captum's " + std::string(s.captum) + "]";
    if (s.type == attr::OptionType::Switch) {
      options_[name] = cmd->add_flag(flag_name(name), switches_[name], help);
      continue;
    }
    CLI::Option* option = cmd->add_option(flag_name(name), text_[name], help);
    if (e.same_default && !s.default_value.empty())
      option->default_str(std::string(s.default_value));
    options_[name] = option;
  }
}

void MethodFlags::collect(attr::MethodArgs& args) const {
  for (const auto& [name, option] : options_) {
    if (option->count() == 0) continue;
    const auto sw = switches_.find(name);
    args.values[name] = sw != switches_.end() ? (sw->second ? "true" : "false") : text_.at(name);
  }
}

std::size_t parse_bytes(const std::string& text, const std::string& flag) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0) bad(flag + ": '" + text + "' is not a size (bytes, or e.g. 512M, 2G)");
  const std::int64_t number = parse_int(std::string_view(text).substr(0, digits), flag);
  std::string unit = text.substr(digits);
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char ch) {
    return static_cast<char>(std::toupper(ch));
  });
  int shift = -1;
  if (unit.empty() || unit == "B") shift = 0;
  for (const auto& [letter, s] : {std::pair{'K', 10}, {'M', 20}, {'G', 30}, {'T', 40}}) {
    const std::string l(1, letter);
    if (unit == l || unit == l + "B" || unit == l + "IB") shift = s;
  }
  if (shift < 0) bad(flag + ": unknown unit in '" + text + "' (use K, M, G or T)");
  if (number > (std::int64_t{1} << (62 - shift))) bad(flag + ": '" + text + "' is too large");
  return static_cast<std::size_t>(number) << shift;
}

std::vector<std::int64_t> parse_indices(const std::string& text,
                                        std::int64_t limit,
                                        const std::string& flag) {
  std::vector<std::int64_t> out;
  if (text == "all") {
    for (std::int64_t i = 0; i < limit; ++i) out.push_back(i);
    return out;
  }
  std::string_view rest = text;
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    const auto colon = item.find(':');
    std::int64_t begin = 0, end = 0;
    if (colon == std::string_view::npos) {
      begin = parse_int(item, flag);
      end = begin + 1;
    } else {
      begin = parse_int(item.substr(0, colon), flag);
      end = parse_int(item.substr(colon + 1), flag);
      if (end <= begin) bad(flag + ": empty range '" + std::string(item) + "'");
    }
    if (begin < 0 || end > limit)
      bad(flag + ": '" + std::string(item) + "' is out of range (the set has " +
          std::to_string(limit) + " images, 0.." + std::to_string(limit - 1) + ")");
    for (std::int64_t i = begin; i < end; ++i) out.push_back(i);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace gradlens::cli
