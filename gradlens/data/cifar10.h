// CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin): records of 1 label byte (0-9)
// then 1024 R, 1024 G and 1024 B bytes, each a 32x32 row-major plane; 10,000 records a file.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gradlens/export.h"

namespace gradlens::data {

inline constexpr std::int64_t kCifarChannels = 3;
inline constexpr std::int64_t kCifarHeight = 32;
inline constexpr std::int64_t kCifarWidth = 32;
inline constexpr std::int64_t kCifarImageBytes =
    kCifarChannels * kCifarHeight * kCifarWidth;                         // 3072
inline constexpr std::int64_t kCifarRecordBytes = 1 + kCifarImageBytes;  // 3073
inline constexpr std::int64_t kCifarRecordsPerFile = 10000;
inline constexpr std::int64_t kCifarFileBytes =
    kCifarRecordsPerFile * kCifarRecordBytes;  // 30730000
inline constexpr std::int64_t kCifarClasses = 10;

/// The PyTorch tutorial's class names, indexed by label.
inline constexpr std::array<std::string_view, kCifarClasses> kCifarClassNames = {
    "plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
/// The official names, as in batches.meta.txt.
inline constexpr std::array<std::string_view, kCifarClasses> kCifarOfficialClassNames = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

/// The official file names: data_batch_1.bin .. data_batch_5.bin for train, test_batch.bin for
/// test.
GRADLENS_API std::vector<std::string> cifar10_file_names(bool train);
/// True for the six names above: such files must hold exactly 10,000 records.
GRADLENS_API bool is_official_cifar10_name(std::string_view file_name);

/// Images and labels of one split, in file order.
struct GRADLENS_API CifarSplit {
  std::vector<std::uint8_t> images;  // size() * 3072 bytes, each image CHW [3, 32, 32]
  std::vector<std::int64_t> labels;  // 0-9

  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
  /// The 3072 bytes of image i (CHW).
  std::span<const std::uint8_t> image(std::int64_t i) const {
    return {images.data() + i * kCifarImageBytes, static_cast<std::size_t>(kCifarImageBytes)};
  }
  /// Appends `other` after this split's records.
  void append(const CifarSplit& other);
};

/// One binary batch file. Throws std::runtime_error naming the file when it is missing, its size is
/// not a whole number of records (exactly 10,000 for an official name) or a label is above 9.
GRADLENS_API CifarSplit load_cifar10_file(const std::string& path);
/// train: data_batch_1..5.bin concatenated in order (50,000 records); else test_batch.bin (10,000).
/// Throws std::runtime_error when `dir` or a file is missing or malformed.
GRADLENS_API CifarSplit load_cifar10(const std::string& dir, bool train);

}  // namespace gradlens::data
