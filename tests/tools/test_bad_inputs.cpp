// Every bad input we know of, given to the gradlens program: each gets a non-zero exit and one
// line naming the file, tensor, flag or image, never a crash or a hang. The same table is the page
// docs/bad-inputs.md: with GRADLENS_BAD_INPUTS_DOC=FILE this test writes it there
// (tools/bad_inputs_doc.sh), and the ctest bad_inputs_doc checks the committed page is what the
// program answers today.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "gradlens/nn/safetensors.h"
#include "tests/testing.h"

namespace {

namespace fs = std::filesystem;
using gradlens::Tensor;
using gradlens::nn::SafetensorsWriter;
using gradlens::testing::run_gradlens;

struct BadInput {
  const char* topic;  // the page's section
  const char* what;   // the bad input, in words
  const char* args;   // the command line: DIR (scratch folder), DATA (CIFAR-10), MODEL (tutorial)
  const char* expected;  // a part of the answer
};

// Grouped by section, in the page's order.
const BadInput kBadInputs[] = {
    {"Model files",
     "a missing file",
     "eval --model DIR/missing.safetensors",
     "model file not found"},
    {"Model files",
     "a header of arrays nested 70,000 deep",
     "eval --model DIR/deep.safetensors",
     "nested deeper than 16 levels"},
    {"Model files", "a FIFO", "eval --model DIR/fifo", "not a regular file"},
    {"Model files",
     "a symbolic link loop",
     "eval --model DIR/loop1",
     "Too many levels of symbolic links"},
    {"Model files",
     "4 GiB of zeros",
     "eval --model DIR/zeros.safetensors",
     "not a safetensors file"},
    {"Model files",
     "the tutorial's model cut to 1,000 bytes",
     "eval --model DIR/truncated.safetensors",
     "truncated.safetensors"},
    {"Model files",
     "a NaN weight",
     "eval --model DIR/nan_model.safetensors --data DATA",
     "has NaN at element 0"},
    {"Model files",
     "a weight of the wrong shape",
     "eval --model DIR/wrong_shape.safetensors",
     "conv1.weight"},
    {"Model files", "a weight stored as F64", "eval --model DIR/f64_model.safetensors", "is F64"},
    {"Input files",
     "no 'inputs' tensor (a model given as --inputs)",
     "attribute saliency --model MODEL --inputs MODEL",
     "has no tensor 'inputs'"},
    {"Input files",
     "inputs of the wrong shape",
     "attribute saliency --model MODEL --inputs DIR/one_channel.safetensors",
     "the Net takes [N, 3, 32, 32]"},
    {"Input files",
     "a label of -1",
     "attribute saliency --model MODEL --inputs DIR/label_minus_one.safetensors",
     "label -1 of image 0"},
    {"Input files",
     "a label of 10",
     "attribute saliency --model MODEL --inputs DIR/label_ten.safetensors",
     "label 10 of image 0"},
    {"Input files",
     "a NaN pixel",
     "attribute saliency --model MODEL --inputs DIR/nan_input.safetensors",
     "image 0 of"},
    {"Input files",
     "a FIFO",
     "attribute saliency --model MODEL --inputs DIR/fifo",
     "not a regular file"},
    {"Input files",
     "a FIFO as --baselines",
     "attribute integrated_gradients --model MODEL --data DATA --baselines DIR/fifo",
     "not a regular file"},
    {"Input files",
     "a FIFO as --draws",
     "attribute gradient_shap --model MODEL --data DATA --draws DIR/fifo",
     "not a regular file"},
    {"Input files",
     "a FIFO as --feature-mask",
     "attribute feature_ablation --model MODEL --data DATA --feature-mask DIR/fifo",
     "not a regular file"},
    {"Input files",
     "a FIFO in place of test_batch.bin",
     "eval --model MODEL --data DIR/fifo_data",
     "not a regular file"},
    {"Output files",
     "--out onto a device",
     "attribute saliency --model MODEL --data DATA --indices 0 --out /dev/full",
     "exists and is not a regular file"},
    {"Output files",
     "--out onto a FIFO",
     "attribute saliency --model MODEL --data DATA --indices 0 --out DIR/fifo",
     "exists and is not a regular file"},
    {"Output files",
     "--out in a missing folder (checked before training)",
     "train --data DATA --limit 8 --out DIR/missing/model.safetensors",
     "does not exist"},
    {"Output files",
     "--out onto a folder",
     "train --data DATA --limit 8 --out DIR",
     "exists and is not a regular file"},
    {"Flags", "an unknown flag", "train --no-such-flag", "--no-such-flag"},
    {"Flags",
     "--n-steps 1000000",
     "attribute integrated_gradients --model MODEL --data DATA --n-steps 1000000",
     "out of range: 1 to 100000"},
    {"Flags", "--threads 100000", "eval --threads 100000", "--threads must be 0 (every core) to"},
    {"Flags",
     "--nt-samples-batch-size past 32 bits",
     "attribute saliency --model MODEL --data DATA --noise-tunnel smoothgrad "
     "--nt-samples-batch-size 4294967297",
     "out of range"},
    {"Flags",
     "--nt-samples without --noise-tunnel",
     "attribute saliency --model MODEL --data DATA --nt-samples 5",
     "it needs noise_tunnel"},
    {"Flags",
     "--memory-budget abc",
     "attribute saliency --model MODEL --data DATA --memory-budget abc",
     "is not a size"},
    {"Flags",
     "--indices past the set",
     "attribute saliency --model MODEL --data DATA --indices 10000",
     "is out of range"},
    {"Flags",
     "an unknown method",
     "attribute no_such_method --model MODEL",
     "unknown method 'no_such_method'"},
    {"Flags",
     "an unknown layer",
     "attribute layer_grad_cam --layer nope --model MODEL --data DATA",
     "unknown layer 'nope'"},
    {"Flags", "--device tpu", "eval --device tpu", "tpu"},
    {"Flags",
     "report --scale 0",
     "report --scale 0 --model MODEL --data DATA --out DIR/r",
     "--scale"},
    {"Training",
     "--batch-size 9223372036854775807",
     "train --data DATA --limit 8 --batch-size 9223372036854775807",
     "is larger than the 8 images of an epoch"},
    {"Training", "--limit -5", "train --data DATA --limit -5", "--limit must be >= 0"},
    {"Training",
     "--checkpoint-every -1",
     "train --data DATA --checkpoint-every -1",
     "--checkpoint-every must be >= 0"},
    {"Training",
     "--lr 1e30 (the loss becomes NaN)",
     "train --data DATA --limit 400 --lr 1e30 --out DIR/diverged.safetensors",
     "training diverged: the loss is NaN"},
    {"Training",
     "--resume from a checkpoint of another seed",
     "train --data DATA --limit 8 --resume --checkpoint DIR/seed0.checkpoint.safetensors --seed 5 "
     "--out DIR/resumed.safetensors",
     "was written with other settings: seed 0 (now 5)"},
    {"Training",
     "--resume from a model instead of a checkpoint",
     "train --data DATA --limit 8 --resume --checkpoint MODEL --out DIR/resumed.safetensors",
     "not a gradlens training checkpoint"},
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); !from.empty() && at != std::string::npos;
       at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

void write_inputs(const fs::path& path,
                  std::vector<float> pixels,
                  std::int64_t label,
                  std::int64_t channels = 3) {
  SafetensorsWriter w;
  w.add("inputs", Tensor::from_vector(pixels, {1, channels, 32, 32}));
  w.add_int64("labels", {label}, {1});
  w.save(path.string());
}

// The files the table names, in DIR.
void make_bad_files(const fs::path& dir, const std::string& model, const std::string& data) {
  {
    const std::string header = "{\"a\":" + std::string(70000, '[') + std::string(70000, ']') + "}";
    std::ofstream out(dir / "deep.safetensors", std::ios::binary);
    const std::uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header;
  }
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0644), 0);
  fs::create_directory(dir / "fifo_data");
  ASSERT_EQ(::mkfifo((dir / "fifo_data" / "test_batch.bin").c_str(), 0644), 0);
  fs::create_symlink("loop2", dir / "loop1");
  fs::create_symlink("loop1", dir / "loop2");
  std::ofstream(dir / "zeros.safetensors").close();
  fs::resize_file(dir / "zeros.safetensors", std::uintmax_t{4} << 30);  // sparse: no disk used
  fs::copy_file(model, dir / "truncated.safetensors");
  fs::resize_file(dir / "truncated.safetensors", 1000);

  const gradlens::nn::SafetensorsFile file = gradlens::nn::SafetensorsFile::load(model);
  auto rewrite = [&](const std::string& name, auto&& change) {
    SafetensorsWriter w;
    for (const std::string& t : file.names()) change(w, t, file.tensor(t));
    w.save((dir / name).string());
  };
  rewrite("nan_model.safetensors", [](SafetensorsWriter& w, const std::string& t, Tensor v) {
    if (t == "conv1.weight") {
      std::vector<float> values = v.to_vector();
      values[0] = std::nanf("");
      v = Tensor::from_vector(values, v.shape());
    }
    w.add(t, v);
  });
  rewrite("wrong_shape.safetensors", [](SafetensorsWriter& w, const std::string& t, Tensor v) {
    w.add(t, t == "conv1.weight" ? Tensor::zeros({6, 1, 5, 5}) : v);
  });
  rewrite("f64_model.safetensors", [](SafetensorsWriter& w, const std::string& t, Tensor v) {
    if (t != "fc3.bias") return w.add(t, v);
    const std::vector<float> f = v.to_vector();
    w.add_float64(t, std::vector<double>(f.begin(), f.end()), v.shape());
  });
  const std::vector<float> grey(3072, 0.1f);
  write_inputs(dir / "one_channel.safetensors", std::vector<float>(1024, 0.1f), 3, 1);
  write_inputs(dir / "label_minus_one.safetensors", grey, -1);
  write_inputs(dir / "label_ten.safetensors", grey, 10);
  std::vector<float> nan_pixel = grey;
  nan_pixel[5] = std::nanf("");
  write_inputs(dir / "nan_input.safetensors", nan_pixel, 3);
  // A checkpoint of seed 0, for the --resume case.
  const gradlens::testing::CliRun seed0 = run_gradlens(
      "train --data " + data + " --limit 8 --epochs 1 --threads 1 --checkpoint-every 1 --out " +
      (dir / "seed0.safetensors").string());
  ASSERT_EQ(seed0.exit_code, 0) << seed0.err;
}

std::string markdown_cell(std::string s) { return replace_all(std::move(s), "|", "\\|"); }

TEST(BadInputs, EachIsAClearLineAndThePageSaysSo) {
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const std::string data = fs::path(test_batch).parent_path().string();
  const std::string dir = gradlens::testing::fresh_temp_dir("gradlens_bad_inputs");
  make_bad_files(dir, model, data);
  if (HasFatalFailure()) return;

  // The answers as a reader sees them: the machine's paths and core count left out.
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  auto portable = [&](std::string s) {
    s = replace_all(s, dir, "DIR");
    s = replace_all(s, model, "MODEL");
    s = replace_all(s, data, "DATA");
    return std::regex_replace(s,
                              std::regex(std::to_string(4 * cores) + " \\(4 x the " +
                                         std::to_string(cores) + " cores\\)"),
                              "4 x the cores");
  };
  std::string page =
      "# Bad input, and what gradlens answers\n\n"
      "Every line below is run by the test `BadInputs.EachIsAClearLineAndThePageSaysSo`\n"
      "(tests/tools/test_bad_inputs.cpp), which writes this page: `bash tools/bad_inputs_doc.sh`\n"
      "makes it again, and the ctest `bad_inputs_doc` fails when it is out of date. Each answer "
      "is\n"
      "one line on stderr with a non-zero exit; nothing that was already written is changed. In\n"
      "the commands, DIR is a scratch folder holding the bad files, DATA the CIFAR-10 folder and\n"
      "MODEL the tutorial's model.\n";
  std::string topic;
  for (const BadInput& c : kBadInputs) {
    std::string args =
        replace_all(replace_all(replace_all(c.args, "DIR", dir), "MODEL", model), "DATA", data);
    const gradlens::testing::CliRun r = run_gradlens(args);
    const std::string first_line = r.err.substr(0, r.err.find('\n'));
    EXPECT_GT(r.exit_code, 0) << c.args << "\n" << r.err;  // -1: killed by a signal
    // One line; CLI11's own refusals add "Run with --help for more information."
    const bool one_line = gradlens::testing::count_lines(r.err) == 1 ||
                          (gradlens::testing::count_lines(r.err) == 2 &&
                           r.err.ends_with("Run with --help for more information.\n"));
    EXPECT_TRUE(one_line) << c.args << "\n" << r.err;
    EXPECT_NE(first_line.find(c.expected), std::string::npos) << c.args << "\n" << r.err;
    if (topic != c.topic) {
      topic = c.topic;
      page += "\n## " + topic + "\n\n| bad input | command | exit | answer |\n|---|---|---|---|\n";
    }
    page += "| " + markdown_cell(c.what) + " | `gradlens " + markdown_cell(c.args) + "` | " +
            std::to_string(r.exit_code) + " | " + markdown_cell(portable(first_line)) + " |\n";
  }
  // Nothing the table tried wrote a file where it was refused.
  EXPECT_FALSE(fs::exists(fs::path(dir) / "diverged.safetensors"));
  EXPECT_FALSE(fs::exists(fs::path(dir) / "resumed.safetensors"));
  EXPECT_TRUE(fs::is_fifo(fs::path(dir) / "fifo"));
  if (const char* doc = std::getenv("GRADLENS_BAD_INPUTS_DOC")) {
    std::ofstream(doc) << page;
  }
}

}  // namespace
