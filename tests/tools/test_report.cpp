// `gradlens report` as a user runs it: the page is self-contained (every <img> an inline PNG that
// decodes, nothing fetched from a network), lists every method with its delta, prediction and
// probability, the PNGs beside it decode; headless Chromium renders it with every image loaded;
// and bad input is one clear error line with a non-zero exit.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gradlens/data/cifar10.h"
#include "gradlens/nn/safetensors.h"
#include "gradlens/viz/html.h"
#include "gradlens/viz/png.h"
#include "tests/testing.h"

namespace fs = std::filesystem;
using gradlens::testing::CliRun;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// NOTE: no std::regex over the page: libstdc++'s regex recurses per character and overflows the
// stack on a megabyte of base64.

// The value of every ` attr="..."` in `html`, in order.
std::vector<std::string> attribute_values(const std::string& html, const std::string& attr) {
  std::vector<std::string> out;
  const std::string key = attr + "=\"";
  for (std::size_t pos = html.find(key); pos != std::string::npos; pos = html.find(key, pos + 1)) {
    if (pos == 0 || !std::isspace(static_cast<unsigned char>(html[pos - 1]))) continue;
    const std::size_t begin = pos + key.size();
    const std::size_t end = html.find('"', begin);
    if (end == std::string::npos) break;
    out.push_back(html.substr(begin, end - begin));
  }
  return out;
}

std::vector<std::string> img_tags(const std::string& html) {
  std::vector<std::string> out;
  for (std::size_t pos = html.find("<img"); pos != std::string::npos;
       pos = html.find("<img", pos + 1)) {
    const std::size_t end = html.find('>', pos);
    if (end == std::string::npos) break;
    out.push_back(html.substr(pos, end - pos + 1));
  }
  return out;
}

// The numbers that follow each `before` and end at `after` (for example "with probability <b>" and
// "</b>").
std::vector<double> numbers_between(const std::string& html,
                                    const std::string& before,
                                    const std::string& after) {
  std::vector<double> out;
  for (std::size_t pos = html.find(before); pos != std::string::npos;
       pos = html.find(before, pos + 1)) {
    const std::size_t begin = pos + before.size();
    const std::size_t end = html.find(after, begin);
    if (end == std::string::npos || end - begin > 24) continue;
    const std::string text = html.substr(begin, end - begin);
    char* stop = nullptr;
    const double v = std::strtod(text.c_str(), &stop);
    if (stop != text.c_str() && *stop == '\0') out.push_back(v);
  }
  return out;
}

// A failing run: non-zero exit, exactly one line on stderr, which mentions every needle.
void expect_one_line_error(const std::string& args, const std::vector<std::string>& needles) {
  const CliRun r = gradlens::testing::run_gradlens("report " + args + " --threads 2");
  EXPECT_NE(r.exit_code, 0) << args;
  EXPECT_EQ(gradlens::testing::count_lines(r.err), 1) << args << "\n" << r.err;
  EXPECT_EQ(r.err.rfind("gradlens: error: ", 0), 0u) << args << "\n" << r.err;
  for (const std::string& needle : needles)
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\n" << r.err;
}

std::string chromium_binary() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (fs::exists(p)) return p;
  }
  return "";
}

int run_shell(const std::string& cmd) {
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST(ReportCli, WritesASelfContainedPageWithEveryMethod) {
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  GRADLENS_SHARED_FILE(logits_file, "reference/test_logits.safetensors");
  const std::string data = fs::path(test_batch).parent_path().string();
  const fs::path dir = fs::path(gradlens::testing::fresh_temp_dir("gradlens_report")) / "out";
  // Fewer noise samples than the tutorial's 100 to keep the suite quick; the page is the same.
  const CliRun r = gradlens::testing::run_gradlens(
      "report --model " + model + " --data " + data +
      " --indices 0:4 --nt-samples 10 --threads 2 --out " + dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote " + (dir / "index.html").string()), std::string::npos) << r.out;
  const std::string html = read_text(dir / "index.html");
  ASSERT_FALSE(html.empty());

  // Self-contained: nothing to fetch.
  for (const char* attr : {"src", "href"}) {
    for (const std::string& v : attribute_values(html, attr)) {
      EXPECT_EQ(v.find("http://"), std::string::npos) << attr << "=" << v.substr(0, 80);
      EXPECT_EQ(v.find("https://"), std::string::npos) << attr << "=" << v.substr(0, 80);
      EXPECT_NE(v.rfind("//", 0), 0u) << attr << "=" << v.substr(0, 80);
    }
  }
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("<script src"), std::string::npos);

  // Every <img> is an inline PNG that decodes to the size the tag says.
  const std::vector<std::string> tags = img_tags(html);
  // 1 grid + 4 images x (original + 14 methods + the tutorial's figure row).
  EXPECT_EQ(tags.size(), 1u + 4u * 16u);
  const std::string prefix = "data:image/png;base64,";
  const fs::path scratch = fs::path(gradlens::testing::fresh_temp_dir("gradlens_report_png"));
  int k = 0;
  for (const std::string& tag : tags) {
    const std::vector<std::string> src = attribute_values(tag, "src");
    ASSERT_EQ(src.size(), 1u) << tag.substr(0, 120);
    ASSERT_EQ(src[0].rfind(prefix, 0), 0u) << tag.substr(0, 120);
    const std::vector<std::uint8_t> png =
        gradlens::viz::base64_decode(src[0].substr(prefix.size()));
    const std::string path = (scratch / ("img" + std::to_string(k++) + ".png")).string();
    gradlens::viz::write_file_atomic(path, png);
    const gradlens::viz::Image image = gradlens::viz::read_png(path);
    EXPECT_EQ(std::to_string(image.width), attribute_values(tag, "width").at(0));
    EXPECT_EQ(std::to_string(image.height), attribute_values(tag, "height").at(0));
  }

  // The PNGs beside the page decode too, and no temp file is left.
  int pngs = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
    if (entry.path().extension() != ".png") continue;
    ++pngs;
    const gradlens::viz::Image image = gradlens::viz::read_png(entry.path().string());
    EXPECT_GT(image.width, 32) << name;
  }
  EXPECT_EQ(pngs, static_cast<int>(tags.size()));
  EXPECT_TRUE(fs::exists(dir / "grid.png"));
  EXPECT_TRUE(fs::exists(dir / "image3_tutorial.png"));
  EXPECT_TRUE(fs::exists(dir / "image3_ig_smoothgrad_sq.png"));

  // Every method, with its parameters.
  for (const char* name : {"Saliency",
                           "Integrated Gradients",
                           "IG + NoiseTunnel (smoothgrad_sq)",
                           "DeepLift",
                           "Input x Gradient",
                           "DeepLiftShap",
                           "GradientShap",
                           "Guided Backprop",
                           "Deconvolution",
                           "Guided GradCAM",
                           "Layer GradCAM",
                           "LRP",
                           "Occlusion",
                           "Feature Ablation",
                           "integrated_gradients(n_steps=50, method=gausslegendre",
                           "noise_tunnel(smoothgrad_sq, nt_samples=10",
                           "stdevs=0.2",
                           "sign=absolute_value, outlier_perc=10",
                           "Overlayed Gradient Magnitudes",
                           "Overlayed DeepLift"}) {
    EXPECT_NE(html.find(name), std::string::npos) << name;
  }
  EXPECT_EQ(html.find("class=\"skipped\""), std::string::npos);  // every method ran
  EXPECT_EQ(html.find("not run:"), std::string::npos);

  // Deltas: IG, DeepLift and LRP one per image; NoiseTunnel, DeepLiftShap, GradientShap per row.
  const std::vector<double> single = numbers_between(html, "convergence delta ", "<");
  EXPECT_EQ(single.size(), 4u * 3u);
  const std::vector<double> rows = numbers_between(html, "max |delta| ", " over");
  EXPECT_EQ(rows.size(), 4u * 3u);
  for (double d : single) EXPECT_TRUE(std::isfinite(d));

  // Predictions and probabilities equal the reference logits' softmax (images 0..3).
  const auto ref = gradlens::nn::SafetensorsFile::load(logits_file);
  const std::vector<float> logits = ref.tensor("logits").to_vector();
  const std::vector<double> probs = numbers_between(html, "with probability <b>", "</b>");
  ASSERT_EQ(probs.size(), 4u);
  const char* truth[] = {"cat", "ship", "ship", "plane"};  // the tutorial's first batch
  for (int i = 0; i < 4; ++i) {
    const float* row = logits.data() + i * 10;
    int best = 0;
    double total = 0;
    for (int c = 0; c < 10; ++c) {
      if (row[c] > row[best]) best = c;
    }
    for (int c = 0; c < 10; ++c) total += std::exp(static_cast<double>(row[c] - row[best]));
    EXPECT_NEAR(probs[static_cast<std::size_t>(i)], 1.0 / total, 1.5e-3) << "image " << i;
    const std::string heading = "Test image " + std::to_string(i) + ": " + truth[i];
    EXPECT_NE(html.find(heading), std::string::npos) << heading;
    const std::string pred = std::string(gradlens::data::kCifarClassNames[best]) + "</b> with";
    EXPECT_NE(html.find(pred), std::string::npos) << pred;
  }
  // Timings.
  EXPECT_GE(numbers_between(html, "<br>time ", " ms for 4 images").size(), 4u * 14u);
  if (!HasFailure()) {  // keep the pages of a failed run to look at
    fs::remove_all(dir.parent_path());
    fs::remove_all(scratch);
  }
}

TEST(ReportCli, ChromiumRendersEveryImage) {
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const std::string chromium = chromium_binary();
  if (chromium.empty()) {
    if (gradlens::testing::running_in_ci())
      FAIL() << "chromium is not installed (tools/install_deps.sh installs it)";
    GTEST_SKIP() << "chromium is not installed: bash tools/install_deps.sh adds it";
  }
  const std::string data = fs::path(test_batch).parent_path().string();
  const fs::path base = gradlens::testing::fresh_temp_dir("gradlens_report_browser");
  const fs::path dir = base / "report";
  const CliRun r = gradlens::testing::run_gradlens(
      "report --model " + model + " --data " + data +
      " --indices 3:5 --nt-samples 4 --threads 2 --out " + dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string html = read_text(dir / "index.html");
  const std::size_t images = img_tags(html).size();
  ASSERT_GT(images, 10u);

  // Isolated, offline, no first-run or background traffic; a fresh profile per run.
  const std::string flags =
      " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
      " --disable-background-networking --disable-component-update --disable-sync"
      " --disable-dev-shm-usage --hide-scrollbars";
  const std::string url = "file://" + fs::absolute(dir / "index.html").string();
  const fs::path shot = base / "screenshot.png";
  const fs::path log = base / "chromium.log";
  const int shot_rc = run_shell("timeout 120 " + chromium + flags +
                                " --user-data-dir=" + (base / "profile1").string() +
                                " --screenshot=" + shot.string() + " --window-size=1400,3000 '" +
                                url + "' >" + log.string() + " 2>&1");
  ASSERT_EQ(shot_rc, 0) << read_text(log);
  ASSERT_TRUE(fs::exists(shot)) << read_text(log);
  const gradlens::viz::Image screen = gradlens::viz::read_png(shot.string());
  EXPECT_EQ(screen.width, 1400);
  EXPECT_EQ(screen.height, 3000);
  // Not blank: many distinct colours (the heat maps), and both dark and light pixels.
  std::set<std::uint32_t> colours;
  int dark = 0;
  for (int y = 0; y < screen.height; y += 2) {
    for (int x = 0; x < screen.width; x += 2) {
      const std::uint8_t* p = screen.at(x, y);
      colours.insert(static_cast<std::uint32_t>(p[0]) << 16 | p[1] << 8 | p[2]);
      dark += p[0] < 60 && p[1] < 60 && p[2] < 60;
    }
  }
  EXPECT_GT(colours.size(), 500u);
  EXPECT_GT(dark, 1000);

  // Every image loaded: the page's probe writes the counts into <body> once it has loaded.
  const fs::path dom = base / "dom.html";
  const int dom_rc = run_shell("timeout 120 " + chromium + flags +
                               " --user-data-dir=" + (base / "profile2").string() +
                               " --virtual-time-budget=5000 --dump-dom '" + url + "' >" +
                               dom.string() + " 2>" + log.string());
  ASSERT_EQ(dom_rc, 0) << read_text(log);
  const std::string dumped = read_text(dom);
  const std::string n = std::to_string(images);
  EXPECT_NE(dumped.find("data-images-loaded=\"" + n + "\""), std::string::npos)
      << dumped.substr(0, std::min<std::size_t>(dumped.size(), 2000));
  EXPECT_NE(dumped.find("data-images-total=\"" + n + "\""), std::string::npos);
  EXPECT_NE(dumped.find("[" + n + "/" + n + " images loaded]"), std::string::npos);
  if (!HasFailure()) fs::remove_all(base);
}

TEST(ReportCli, BadInputIsOneClearErrorLine) {
  GRADLENS_SHARED_FILE(model, "reference/cifar_net.safetensors");
  GRADLENS_SHARED_FILE(test_batch, "cifar10/test_batch.bin");
  const std::string data = fs::path(test_batch).parent_path().string();
  const fs::path dir = gradlens::testing::fresh_temp_dir("gradlens_report_bad");
  const std::string out = " --out " + (dir / "out").string();
  const std::string ok = " --data " + data + out;

  expect_one_line_error("--model " + (dir / "missing.safetensors").string() + ok,
                        {(dir / "missing.safetensors").string(), "not found"});
  expect_one_line_error("--model " + model + " --data " + (dir / "nodata").string() + out,
                        {(dir / "nodata").string()});
  expect_one_line_error("--model " + model + ok + " --indices 9999:10001",
                        {"--indices", "9999:10001", "10000 images"});
  expect_one_line_error("--model " + model + ok + " --indices 4:2", {"--indices", "4:2"});
  expect_one_line_error("--model " + model + ok + " --indices x", {"--indices", "'x'"});
  expect_one_line_error("--model " + model + ok + " --methods saliency,nope",
                        {"--methods", "nope"});
  expect_one_line_error("--model " + model + ok + " --nt-samples 0", {"--nt-samples"});

  // A model whose conv1 has the wrong shape: the error names the tensor and both shapes.
  auto tensors = gradlens::nn::SafetensorsFile::load(model).float_tensors();
  auto wrong = tensors;
  wrong["conv1.weight"] = gradlens::Tensor::zeros({6, 3, 3, 3});
  const std::string wrong_path = (dir / "wrong_shape.safetensors").string();
  gradlens::nn::save_safetensors(wrong_path, wrong);
  expect_one_line_error("--model " + wrong_path + ok,
                        {wrong_path, "conv1.weight", "[6, 3, 3, 3]", "[6, 3, 5, 5]"});

  // A NaN in a weight: named with its tensor and shape before any picture is drawn.
  auto nan = tensors;
  std::vector<float> w = nan["fc1.weight"].to_vector();
  w[17] = std::nanf("");
  nan["fc1.weight"] = gradlens::Tensor::from_vector(w, {120, 400});
  const std::string nan_path = (dir / "nan.safetensors").string();
  gradlens::nn::save_safetensors(nan_path, nan);
  expect_one_line_error("--model " + nan_path + ok,
                        {nan_path, "fc1.weight", "[120, 400]", "NaN", "element 17"});
  EXPECT_FALSE(fs::exists(dir / "out" / "index.html"));
  if (!HasFailure()) fs::remove_all(dir);
}
