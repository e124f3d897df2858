// gradlens train --checkpoint-every / --resume: a run killed with SIGKILL at random moments and
// resumed each time ends with the model an uninterrupted run writes, byte for byte.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using gradlens::testing::count_lines;
using gradlens::testing::fresh_temp_dir;
using gradlens::testing::run_gradlens;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// gradlens with `args`, stdout and stderr appended to `log`; returns its pid.
pid_t spawn_gradlens(const std::vector<std::string>& args, const fs::path& log) {
  const std::string program = gradlens::testing::gradlens_program();
  std::vector<char*> argv{const_cast<char*>(program.c_str())};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// Seconds until `log` holds `needle` (polling every 2 ms), or -1 when the process ended first.
double wait_for_line(pid_t pid,
                     const fs::path& log,
                     const std::string& needle,
                     Clock::time_point t0) {
  for (;;) {
    if (read_file(log).find(needle) != std::string::npos)
      return std::chrono::duration<double>(Clock::now() - t0).count();
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

TEST(TrainResume, KilledAtRandomMomentsAndResumedEndsBitIdentical) {
  GRADLENS_SHARED_FILE(train_batch, "cifar10/data_batch_1.bin");
  const std::string data = fs::path(train_batch).parent_path().string();
  const fs::path dir = fresh_temp_dir("gradlens_resume");
  const std::vector<std::string> run = {"train",
                                        "--data",
                                        data,
                                        "--epochs",
                                        "2",
                                        "--limit",
                                        "2000",
                                        "--batch-size",
                                        "4",
                                        "--seed",
                                        "7",
                                        "--threads",
                                        "2",
                                        "--log-every",
                                        "100"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = run;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };

  // The uninterrupted run, timed from its first line ("training Net on ...") to its end.
  const fs::path reference = dir / "reference.safetensors";
  const auto t0 = Clock::now();
  const pid_t ref_pid = spawn_gradlens(with({"--out", reference.string()}), dir / "reference.log");
  ASSERT_GT(ref_pid, 0);
  const double started = wait_for_line(ref_pid, dir / "reference.log", "training Net on", t0);
  int status = 0;
  if (started >= 0) waitpid(ref_pid, &status, 0);
  const double training_seconds =
      std::chrono::duration<double>(Clock::now() - t0).count() - started;
  ASSERT_TRUE(fs::exists(reference)) << read_file(dir / "reference.log");

  // The same run, killed at a random moment of its first quarter of training time (data loading
  // excluded) each time and resumed, until it is let finish after eight kills: at least three
  // kills land before it can end.
  const fs::path model = dir / "model.safetensors";
  std::mt19937 rng(2026);
  int kills = 0, attempts = 0;
  for (; attempts < 30; ++attempts) {
    const fs::path log = dir / ("attempt-" + std::to_string(attempts) + ".log");
    const auto start = Clock::now();
    const pid_t pid = spawn_gradlens(
        with({"--checkpoint-every", "23", "--resume", "--out", model.string()}), log);
    ASSERT_GT(pid, 0);
    if (kills < 8 && wait_for_line(pid, log, "training Net on", start) >= 0) {
      std::uniform_real_distribution<double> moment(0.0, training_seconds / 4);
      std::this_thread::sleep_for(std::chrono::duration<double>(moment(rng)));
      kill(pid, SIGKILL);
    }
    status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
      ++kills;
      continue;
    }
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(log);
    break;
  }
  ASSERT_LT(attempts, 30);
  EXPECT_GE(kills, 3);
  std::string logs;
  for (int k = 0; k <= attempts; ++k)
    logs += read_file(dir / ("attempt-" + std::to_string(k) + ".log"));
  std::size_t resumes = 0;
  for (std::size_t at = logs.find("resumed from"); at != std::string::npos;
       at = logs.find("resumed from", at + 1))
    ++resumes;
  EXPECT_GE(resumes, 2u) << logs;
  const std::string expected = read_file(reference), actual = read_file(model);
  ASSERT_FALSE(expected.empty());
  EXPECT_TRUE(actual == expected) << "after " << kills << " kills and " << resumes
                                  << " resumes the model differs from the uninterrupted run's\n"
                                  << logs;
  // Nothing half-written is left in the folder: only the logs, the two models and the checkpoint.
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(name.ends_with(".log") || name == "reference.safetensors" ||
                name == "model.safetensors" || name == "model.checkpoint.safetensors")
        << name;
  }
}

TEST(TrainResume, ACheckpointOfOtherSettingsOrNoCheckpointIsRefusedByName) {
  GRADLENS_SHARED_FILE(train_batch, "cifar10/data_batch_1.bin");
  const std::string data = fs::path(train_batch).parent_path().string();
  const fs::path dir = fresh_temp_dir("gradlens_resume_refused");
  const std::string out = (dir / "net.safetensors").string();
  const std::string base =
      "train --data " + data + " --epochs 1 --limit 40 --threads 1 --out " + out;
  const gradlens::testing::CliRun first = run_gradlens(base + " --checkpoint-every 5");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_TRUE(fs::exists(dir / "net.checkpoint.safetensors"));

  const gradlens::testing::CliRun other = run_gradlens(base + " --resume --lr 0.01 --seed 3");
  EXPECT_NE(other.exit_code, 0);
  EXPECT_EQ(count_lines(other.err), 1) << other.err;
  EXPECT_NE(other.err.find("was written with other settings: lr 0.00100000005 (now 0.00999999978)"
                           " seed 0 (now 3)"),
            std::string::npos)
      << other.err;

  const gradlens::testing::CliRun model_as_checkpoint =
      run_gradlens(base + " --resume --checkpoint " + out);
  EXPECT_NE(model_as_checkpoint.exit_code, 0);
  EXPECT_NE(model_as_checkpoint.err.find("not a gradlens training checkpoint"), std::string::npos)
      << model_as_checkpoint.err;

  const gradlens::testing::CliRun folder =
      run_gradlens(base + " --checkpoint-every 5 --checkpoint " + dir.string());
  EXPECT_NE(folder.exit_code, 0);
  EXPECT_NE(folder.err.find("--checkpoint: " + dir.string() + " exists and is not a regular file"),
            std::string::npos)
      << folder.err;

  // A finished run resumed does no step and writes the same model again.
  const std::string before = read_file(out);
  const gradlens::testing::CliRun again = run_gradlens(base + " --resume");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("resumed from"), std::string::npos) << again.out;
  EXPECT_EQ(read_file(out), before);
}

}  // namespace
