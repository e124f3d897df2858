// data::write_file_atomic, the one writer of every file: never through a planted link, never onto
// a device or a FIFO, nothing left behind, the old file kept when writing fails.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "gradlens/data/file.h"
#include "tests/testing.h"

namespace fs = std::filesystem;
using gradlens::data::write_file_atomic;

namespace {

std::string read_all(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(AtomicFile, RefusesDevicesFifosAndFoldersAndLeavesThemAlone) {
  const fs::path dir = gradlens::testing::fresh_temp_dir("gradlens_atomic_file");
  const fs::path fifo = dir / "out.png";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(error_of([&] {
              write_file_atomic(fifo.string(), std::string_view("x"));
            }).find(fifo.string() + ": exists and is not a regular file"),
            std::string::npos);
  EXPECT_TRUE(fs::is_fifo(fifo));
  // /dev/null stands for any device: a link to one is refused too, and the link stays.
  const fs::path to_device = dir / "model.safetensors";
  fs::create_symlink("/dev/null", to_device);
  EXPECT_NE(error_of([&] {
              write_file_atomic(to_device.string(), std::string_view("x"));
            }).find("links to something that is not a regular file"),
            std::string::npos);
  EXPECT_TRUE(fs::is_symlink(to_device));
  EXPECT_NE(error_of([&] {
              write_file_atomic(dir.string(), std::string_view("x"));
            }).find("is a directory"),
            std::string::npos);
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 2);  // the FIFO and the link: no temporary left
}

TEST(AtomicFile, NeverWritesThroughALink) {
  const fs::path dir = gradlens::testing::fresh_temp_dir("gradlens_atomic_link");
  const fs::path outside = dir / "outside.txt";
  std::ofstream(outside) << "precious";
  fs::create_directory(dir / "out");
  const fs::path path = dir / "out" / "index.html";
  // The guessable temporary names of before (<file>.tmp.<pid>) and a link at the file itself.
  fs::create_symlink(outside, dir / "out" / ("index.html.tmp." + std::to_string(::getpid())));
  fs::create_symlink(outside, path);
  write_file_atomic(path.string(), std::string_view("<html>"));
  EXPECT_EQ(read_all(outside), "precious");
  EXPECT_FALSE(fs::is_symlink(path));  // the link was replaced, its target left alone
  EXPECT_EQ(read_all(path), "<html>");
}

TEST(AtomicFile, AFailingWriterKeepsTheOldFileAndLeavesNoTemporary) {
  const fs::path dir = gradlens::testing::fresh_temp_dir("gradlens_atomic_fail");
  const fs::path path = dir / "shard.safetensors";
  std::ofstream(path) << "old";
  EXPECT_THROW(write_file_atomic(path.string(),
                                 [](const gradlens::data::ByteSink& write) {
                                   write("partial", 7);
                                   throw std::runtime_error("disk full");
                                 }),
               std::runtime_error);
  EXPECT_EQ(read_all(path), "old");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1);
}

// A writer killed mid-write leaves its temporary; the next write of the same file removes it, but
// not one whose process is still running, nor anything else in the folder.
TEST(AtomicFile, TemporariesOfKilledWritersAreRemovedByTheNextWrite) {
  const fs::path dir = gradlens::testing::fresh_temp_dir("gradlens_atomic_stale");
  const pid_t dead = 4194303;  // above any pid in use here: checked below
  ASSERT_NE(::kill(dead, 0), 0);
  const fs::path stale = dir / (".model.safetensors.tmp-" + std::to_string(dead) + "-abc123");
  const fs::path live = dir / (".model.safetensors.tmp-" + std::to_string(::getpid()) + "-def456");
  const fs::path other = dir / (".report.png.tmp-" + std::to_string(dead) + "-abc123");
  for (const fs::path& p : {stale, live, other}) std::ofstream(p) << "partial";
  write_file_atomic((dir / "model.safetensors").string(), std::string_view("model"));
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(other));
  EXPECT_EQ(read_all(dir / "model.safetensors"), "model");
}
