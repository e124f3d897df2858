// CIFAR-10 binary reader: reads whole files, checks sizes and labels, splits labels from pixels.
#include "gradlens/data/cifar10.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>

namespace gradlens::data {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("[cifar10] " + path + ": " + what);
}

}  // namespace

std::vector<std::string> cifar10_file_names(bool train) {
  if (!train) return {"test_batch.bin"};
  std::vector<std::string> names;
  for (int i = 1; i <= 5; ++i) names.push_back("data_batch_" + std::to_string(i) + ".bin");
  return names;
}

bool is_official_cifar10_name(std::string_view file_name) {
  for (bool train : {true, false}) {
    for (const std::string& name : cifar10_file_names(train)) {
      if (name == file_name) return true;
    }
  }
  return false;
}

void CifarSplit::append(const CifarSplit& other) {
  images.insert(images.end(), other.images.begin(), other.images.end());
  labels.insert(labels.end(), other.labels.begin(), other.labels.end());
}

CifarSplit load_cifar10_file(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) fail(path, ec.message());
  if (!fs::exists(status)) fail(path, "no such file");
  if (!fs::is_regular_file(status)) fail(path, "not a regular file");
  const std::uintmax_t bytes = fs::file_size(path, ec);
  if (ec) fail(path, "cannot read its size: " + ec.message());

  const auto record = static_cast<std::uintmax_t>(kCifarRecordBytes);
  if (is_official_cifar10_name(fs::path(path).filename().string())) {
    if (bytes != static_cast<std::uintmax_t>(kCifarFileBytes)) {
      fail(path,
           std::to_string(bytes) + " bytes, expected " + std::to_string(kCifarFileBytes) + " (" +
               std::to_string(kCifarRecordsPerFile) + " records of " + std::to_string(record) +
               " bytes)");
    }
  } else if (bytes == 0 || bytes % record != 0) {
    fail(path,
         std::to_string(bytes) + " bytes, expected a positive multiple of " +
             std::to_string(record) + " (records of 1 label byte + 3072 pixel bytes)");
  }

  std::vector<char> raw(static_cast<std::size_t>(bytes));
  std::ifstream in(path, std::ios::binary);
  if (!in || !in.read(raw.data(), static_cast<std::streamsize>(raw.size()))) {
    fail(path, "read failed");
  }

  const std::size_t n = raw.size() / record;
  CifarSplit split;
  split.labels.resize(n);
  split.images.resize(n * static_cast<std::size_t>(kCifarImageBytes));
  for (std::size_t i = 0; i < n; ++i) {
    const char* rec = raw.data() + i * record;
    const auto label = static_cast<std::uint8_t>(rec[0]);
    if (label >= kCifarClasses) {
      fail(path,
           "record " + std::to_string(i) + " (byte offset " + std::to_string(i * record) +
               ") has label " + std::to_string(label) + ", expected 0-9");
    }
    split.labels[i] = label;
    std::copy_n(rec + 1, kCifarImageBytes, split.images.begin() + i * kCifarImageBytes);
  }
  return split;
}

CifarSplit load_cifar10(const std::string& dir, bool train) {
  std::error_code ec;
  const fs::file_status status = fs::status(dir, ec);
  // A link loop or a folder we may not enter says so; only a missing folder suggests fetching.
  if (ec && ec != std::errc::no_such_file_or_directory)
    throw std::runtime_error("[cifar10] " + dir + ": " + ec.message());
  if (!fs::is_directory(status)) {
    throw std::runtime_error("[cifar10] " + dir +
                             (fs::exists(status)
                                  ? ": not a directory"
                                  : ": no such directory (run `gradlens data fetch " + dir + "`)"));
  }
  CifarSplit split;
  const std::vector<std::string> names = cifar10_file_names(train);
  split.labels.reserve(names.size() * kCifarRecordsPerFile);
  split.images.reserve(names.size() * kCifarRecordsPerFile * kCifarImageBytes);
  for (const std::string& name : names) {
    const std::string path = (fs::path(dir) / name).string();
    const fs::file_status file_status = fs::status(path, ec);
    if (ec && ec != std::errc::no_such_file_or_directory) fail(path, ec.message());
    if (!fs::exists(file_status)) {
      fail(path, "no such file (run `gradlens data fetch " + dir + "`)");
    }
    split.append(load_cifar10_file(path));
  }
  return split;
}

}  // namespace gradlens::data
