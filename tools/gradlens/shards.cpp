#include "tools/gradlens/shards.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "gradlens/nn/safetensors.h"
#include "gradlens/viz/png.h"
#include "tools/gradlens/commands.h"
#include "tools/gradlens/method_flags.h"

namespace gradlens::cli {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& message) { throw std::runtime_error(message); }

std::int64_t parse_count(const std::string& text, const std::string& what) {
  std::size_t used = 0;
  std::int64_t v = -1;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty()) fail("--shard: '" + what + "' is not a number");
  return v;
}

nlohmann::json read_manifest(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read '" + path + "'");
  try {
    // Ours nest two deep; a deeper one is refused while parsing, before anything walks it.
    return nlohmann::json::parse(in, [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      if (depth > 8) throw std::invalid_argument("nested too deep");
      return true;
    });
  } catch (const std::exception& e) {
    std::string why = e.what();
    if (why.size() > 200) why = why.substr(0, 197) + "...";
    fail(path + " is not a gradlens manifest: " + why);
  }
}

struct ShardEntry {
  std::int64_t begin = 0, count = 0;
  std::string path;
};

// shard-<begin>-<count>.safetensors files of `dir`, by begin.
std::vector<ShardEntry> list_shards(const std::string& dir) {
  std::vector<ShardEntry> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    long long begin = 0, count = 0;
    char tail[32] = {};
    if (std::sscanf(name.c_str(), "shard-%lld-%lld.%31s", &begin, &count, tail) == 3 &&
        std::string(tail) == "safetensors") {
      out.push_back({begin, count, entry.path().string()});
    }
  }
  std::sort(out.begin(), out.end(), [](const ShardEntry& a, const ShardEntry& b) {
    return a.begin < b.begin;
  });
  return out;
}

void merge_shards(const std::string& dir, const std::string& out_path) {
  const nlohmann::json manifest = read_manifest(dir + "/manifest.json");
  const std::vector<std::int64_t> planned =
      parse_indices(manifest.at("indices").get<std::string>(),
                    manifest.at("split_size").get<std::int64_t>(),
                    "manifest indices");
  const std::int64_t total = static_cast<std::int64_t>(planned.size());
  std::vector<int> covered(planned.size(), 0);
  std::vector<float> values, delta;
  std::vector<std::int64_t> indices, targets, predicted;
  Shape value_shape;
  bool with_delta = true;
  std::int64_t next = 0;  // shards are appended in position order; gaps and overlaps fail below
  for (const ShardEntry& s : list_shards(dir)) {
    const auto file = nn::SafetensorsFile::load(s.path);
    const std::vector<std::int64_t> ids = file.int64s("indices");
    if (s.begin < 0 || s.count < 1 || s.begin + s.count > total ||
        static_cast<std::int64_t>(ids.size()) != s.count ||
        !std::equal(ids.begin(), ids.end(), planned.begin() + s.begin)) {
      fail(s.path + ": its images are not planned positions " + std::to_string(s.begin) + ".." +
           std::to_string(s.begin + s.count - 1) + " of " + dir + "/manifest.json");
    }
    for (std::int64_t i = s.begin; i < s.begin + s.count; ++i)
      ++covered[static_cast<std::size_t>(i)];
    if (s.begin != next) continue;  // reported as a gap or an overlap after the loop
    next = s.begin + s.count;
    const Tensor a = file.tensor("attributions");
    if (value_shape.empty()) value_shape = a.shape();
    const std::vector<float> v = a.to_vector();
    values.insert(values.end(), v.begin(), v.end());
    with_delta = with_delta && file.contains("delta");
    if (with_delta) {
      const std::vector<float> d = file.tensor("delta").to_vector();
      delta.insert(delta.end(), d.begin(), d.end());
    }
    for (auto [name, dst] : {std::pair{"targets", &targets}, std::pair{"predicted", &predicted}}) {
      const auto got = file.int64s(name);
      dst->insert(dst->end(), got.begin(), got.end());
    }
    indices.insert(indices.end(), ids.begin(), ids.end());
  }
  std::int64_t missing = 0, repeated = 0;
  std::string first_missing;
  for (std::size_t i = 0; i < covered.size(); ++i) {
    if (covered[i] == 0 && missing++ < 5) first_missing += " " + std::to_string(planned[i]);
    if (covered[i] > 1) ++repeated;
  }
  if (missing > 0) {
    fail(dir + ": " + std::to_string(missing) + " of " + std::to_string(total) +
         " planned images have no shard (images" + first_missing + (missing > 5 ? " ..." : "") +
         "); run the missing --shard jobs with --resume");
  }
  if (repeated > 0) {
    fail(dir + ": " + std::to_string(repeated) +
         " images are in more than one shard (runs with different --images-per-shard?)");
  }
  value_shape[0] = total;
  nn::SafetensorsWriter writer;
  writer.add("attributions", Tensor::from_vector(values, value_shape));
  if (with_delta && !delta.empty()) {
    writer.add("delta", Tensor::from_vector(delta, {static_cast<std::int64_t>(delta.size())}));
  }
  writer.add_int64("indices", indices, {total});
  writer.add_int64("targets", targets, {total});
  writer.add_int64("predicted", predicted, {total});
  writer.set_metadata("method", manifest.at("method").get<std::string>());
  writer.set_metadata("manifest", manifest.dump());
  writer.save(out_path);
  std::printf("merged %lld images from %s into %s\n",
              static_cast<long long>(total),
              dir.c_str(),
              out_path.c_str());
}

}  // namespace

std::pair<std::int64_t, std::int64_t> parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) fail("--shard: expected K/N (0 <= K < N), got '" + text + "'");
  const std::int64_t k = parse_count(text.substr(0, slash), text);
  const std::int64_t n = parse_count(text.substr(slash + 1), text);
  if (n < 1 || k < 0 || k >= n) fail("--shard: expected K/N with 0 <= K < N, got '" + text + "'");
  return {k, n};
}

std::pair<std::int64_t, std::int64_t> shard_slice(std::int64_t total,
                                                  std::int64_t k,
                                                  std::int64_t n) {
  return {total * k / n, total * (k + 1) / n};
}

std::string shard_file(const std::string& dir, std::int64_t begin, std::int64_t count) {
  char name[64];
  std::snprintf(name,
                sizeof name,
                "shard-%08lld-%06lld.safetensors",
                static_cast<long long>(begin),
                static_cast<long long>(count));
  return dir + "/" + name;
}

void write_or_check_manifest(const std::string& dir, const nlohmann::json& manifest) {
  const std::string path = dir + "/manifest.json";
  if (fs::exists(path)) {
    const nlohmann::json old = read_manifest(path);
    if (old == manifest) return;
    std::string keys;
    for (const auto& [key, value] : manifest.items()) {
      if (!old.contains(key) || old.at(key) != value) keys += (keys.empty() ? "" : ", ") + key;
    }
    for (const auto& [key, value] : old.items()) {
      if (!manifest.contains(key)) keys += (keys.empty() ? "" : ", ") + key;
    }
    fail(path + " was written by a run with another configuration (differs in: " + keys +
         "); use another --out directory");
  }
  viz::write_file_atomic(path, manifest.dump(1) + "\n");  // temp file, fsync, rename
}

void add_shards_command(CLI::App& app) {
  CLI::App* shards = app.add_subcommand("shards", "work with the shard directories of attribute");
  shards->require_subcommand(1);
  auto dir = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  CLI::App* merge =
      shards->add_subcommand("merge", "check that the shards cover every image once and join them");
  merge->add_option("dir", *dir, "the --out directory of gradlens attribute")->required();
  merge->add_option("--out", *out, "the merged safetensors file")->required();
  merge->callback([dir, out] {
    if (!parse_only()) merge_shards(*dir, *out);
  });
}

}  // namespace gradlens::cli
