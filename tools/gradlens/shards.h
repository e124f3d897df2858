// Data-set-scale attribution output: a directory of shards (safetensors, each written atomically:
// attributions, delta where the method has one, indices, targets, predicted) and manifest.json,
// the run's whole configuration. A run with --shard K/N does the K-th of N disjoint slices, so
// separate processes or machines share a data set with no coordination; `gradlens shards merge`
// checks that the shards cover every planned image once and joins them.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gradlens::cli {

/// "K/N" -> {K, N} with 0 <= K < N; anything else is an error naming the flag.
std::pair<std::int64_t, std::int64_t> parse_shard(const std::string& text);

/// Positions [begin, end) of the planned images that job K of N takes (contiguous slices).
std::pair<std::int64_t, std::int64_t> shard_slice(std::int64_t total,
                                                  std::int64_t k,
                                                  std::int64_t n);

/// The file of the shard holding planned positions [begin, begin + count).
std::string shard_file(const std::string& dir, std::int64_t begin, std::int64_t count);

/// Writes `manifest` to dir/manifest.json, or checks that the one there is equal: a different
/// configuration in the same directory is an error listing the keys that differ.
void write_or_check_manifest(const std::string& dir, const nlohmann::json& manifest);

/// `gradlens shards merge DIR --out FILE`.
void add_shards_command(CLI::App& app);

}  // namespace gradlens::cli
