// gradlens report: the Captum CIFAR-10 tutorial's pictures for chosen test images, as one
// self-contained HTML page (PNGs inlined as data: URIs, inline CSS) plus the same PNGs beside it:
// the make_grid of the images with labels and predictions, the tutorial's figure set, and every
// attribution method side by side with its parameters, convergence delta and run time.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "gradlens/attr/attribution.h"
#include "gradlens/attr/registry.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/hooks.h"
#include "gradlens/data/cifar10.h"
#include "gradlens/data/transforms.h"
#include "gradlens/kernels/backend.h"
#include "gradlens/viz/figure.h"
#include "gradlens/viz/grid.h"
#include "gradlens/viz/html.h"
#include "gradlens/viz/png.h"
#include "gradlens/viz/render.h"
#include "gradlens/viz/visualize.h"
#include "tools/gradlens/commands.h"
#include "tools/gradlens/common.h"
#include "tools/gradlens/method_flags.h"
#if GRADLENS_WITH_ONNX
#include "gradlens/onnx/model.h"
#endif

namespace gradlens::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kSize = 32;  // CIFAR-10 images are 3 x 32 x 32

struct ReportOptions {
  std::string model = "cifar_net.safetensors";
  bool allow_nonfinite = false;  // load a model with NaN or Inf weights
  OnnxFlags onnx;
  std::string data_dir = ".data/cifar10";
  std::string indices = "0:4";
  std::string out = "report";
  std::string methods = "all";
  std::string target = "label";
  std::string device = "cpu";
  std::string precision = "float32";
  std::string layer;  // the layer methods' layer: "" = conv2, or an ONNX model's last Conv
  int nt_samples = 100;
  float stdevs = 0.2f;
  int n_steps = 50;
  int scale = 8;
  int threads = 0;
  std::uint64_t seed = 0;
};

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

// One column of the report: what the factory builds and how Captum's visualizer draws it.
struct MethodSpec {
  std::string key;        // --methods name and file name part
  std::string title;      // shown above the panel
  std::string method;     // attr::methods() name
  attr::MethodArgs args;  // its options; the rest take Captum's defaults
  viz::Sign sign = viz::Sign::All;
  double outlier_perc = 2;
  std::string tutorial_title;  // non-empty for the tutorial's four figures
  std::string png_title;       // their title in imageN_tutorial.png (the built-in font's letters)
};

std::vector<MethodSpec> all_methods(const ReportOptions& o) {
  auto spec = [&](std::string key,
                  std::string title,
                  std::string method,
                  viz::Sign sign,
                  double outlier = 2,
                  std::string tutorial = "") {
    MethodSpec s;
    s.key = std::move(key);
    s.title = std::move(title);
    s.method = std::move(method);
    s.args.concurrency = 0;  // as the attribute command: independent chunks one a CPU thread
    // The convergence delta wherever a method has one, and the report's own step count and seed.
    for (const attr::OptionSpec& option : attr::method_info(s.method).options) {
      if (option.name == "delta") s.args.values["delta"] = "true";
      if (option.name == "n_steps") s.args.values["n_steps"] = std::to_string(o.n_steps);
      if (option.name == "seed") s.args.values["seed"] = std::to_string(o.seed);
    }
    s.sign = sign;
    s.outlier_perc = outlier;
    s.tutorial_title = std::move(tutorial);
    s.png_title = s.key;
    return s;
  };
  using viz::Sign;
  std::vector<MethodSpec> m;
  // The tutorial's four, with its visualize_image_attr arguments.
  m.push_back(spec(
      "saliency", "Saliency", "saliency", Sign::AbsoluteValue, 2, "Overlayed Gradient Magnitudes"));
  m.push_back(spec("integrated_gradients",
                   "Integrated Gradients",
                   "integrated_gradients",
                   Sign::All,
                   2,
                   "Overlayed Integrated Gradients"));
  MethodSpec nt = spec("ig_smoothgrad_sq",
                       "IG + NoiseTunnel (smoothgrad_sq)",
                       "integrated_gradients",
                       Sign::AbsoluteValue,
                       10,
                       "Overlayed Integrated Gradients with SmoothGrad Squared");
  m.back().png_title = "integrated gradients";
  nt.args.values["noise_tunnel"] = "smoothgrad_sq";
  nt.args.values["seed"] = std::to_string(o.seed);
  nt.png_title = "ig smoothgrad_sq";
  nt.args.values["nt_samples"] = std::to_string(o.nt_samples);
  nt.args.values["stdevs"] = std::to_string(o.stdevs);
  m.push_back(std::move(nt));
  m.push_back(spec("deeplift", "DeepLift", "deeplift", Sign::All, 2, "Overlayed DeepLift"));
  // The rest of what the factory knows, each drawn as a signed blended heat map.
  m.push_back(spec("input_x_gradient", "Input x Gradient", "input_x_gradient", Sign::All));
  m.push_back(spec("deeplift_shap", "DeepLiftShap", "deeplift_shap", Sign::All));
  m.push_back(spec("gradient_shap", "GradientShap", "gradient_shap", Sign::All));
  m.push_back(spec("guided_backprop", "Guided Backprop", "guided_backprop", Sign::All));
  m.push_back(spec("deconvolution", "Deconvolution", "deconvolution", Sign::All));
  m.push_back(spec("guided_grad_cam", "Guided GradCAM (conv2)", "guided_grad_cam", Sign::All));
  MethodSpec cam = spec("layer_grad_cam", "Layer GradCAM (conv2)", "layer_grad_cam", Sign::All);
  cam.args.values["interpolate"] = "nearest";  // LayerAttribution.interpolate's default, to 32x32
  m.push_back(std::move(cam));
  m.push_back(spec("lrp", "LRP (epsilon)", "lrp", Sign::All));
  m.push_back(spec("occlusion", "Occlusion (3x8x8, stride 4)", "occlusion", Sign::All));
  MethodSpec fa =
      spec("feature_ablation", "Feature Ablation (4x4 superpixels)", "feature_ablation", Sign::All);
  // The reference's mask: 16 superpixels of 8x8, id = (h / 8) * 4 + w / 8, shared by the channels.
  for (int h = 0; h < kSize; ++h)
    for (int w = 0; w < kSize; ++w) fa.args.feature_mask.push_back((h / 8) * 4 + w / 8);
  fa.args.mask_shape = {1, 1, kSize, kSize};
  m.push_back(std::move(fa));
  return m;
}

std::vector<MethodSpec> choose_methods(const ReportOptions& o) {
  std::vector<MethodSpec> all = all_methods(o);
  if (o.methods == "all") return all;
  if (o.methods == "tutorial") {
    all.erase(
        std::remove_if(
            all.begin(), all.end(), [](const MethodSpec& s) { return s.tutorial_title.empty(); }),
        all.end());
    return all;
  }
  std::vector<MethodSpec> chosen;
  std::stringstream list(o.methods);
  std::string name;
  while (std::getline(list, name, ',')) {
    const auto it =
        std::find_if(all.begin(), all.end(), [&](const MethodSpec& s) { return s.key == name; });
    if (it == all.end()) {
      std::string known;
      for (const MethodSpec& s : all) known += (known.empty() ? "" : ", ") + s.key;
      fail("--methods: unknown method '" + name + "'; use all, tutorial or some of: " + known);
    }
    chosen.push_back(*it);
  }
  if (chosen.empty()) fail("--methods: no method named in '" + o.methods + "'");
  return chosen;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}
std::string general(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.3g", v);
  return buf;
}
std::string class_name(std::int64_t c) {
  return std::string(data::kCifarClassNames[static_cast<std::size_t>(c)]);
}

// One picture of the page: written beside index.html and inlined as a data: URI.
struct Picture {
  std::string file, uri;
  int width = 0, height = 0;
};
Picture save(const fs::path& dir, const std::string& file, const viz::Image& image) {
  const std::vector<std::uint8_t> png = viz::encode_png(image);
  viz::write_file_atomic((dir / file).string(), png);
  return {file, "data:image/png;base64," + viz::base64_encode(png), image.width, image.height};
}

std::string img_tag(const Picture& p, const std::string& alt, const std::string& css_class) {
  return "<img class=\"" + css_class + "\" src=\"" + p.uri + "\" width=\"" +
         std::to_string(p.width) + "\" height=\"" + std::to_string(p.height) + "\" alt=\"" +
         viz::html_escape(alt) + "\" title=\"" + viz::html_escape(p.file) + "\">";
}

// What one method produced for every image.
struct MethodRun {
  const MethodSpec* spec = nullptr;
  std::string description;  // the factory's "name(params)"
  std::vector<float> values;
  std::int64_t channels = 0;
  std::vector<float> delta;
  std::int64_t deltas_per_image = 0;
  double seconds = 0;
  std::string skipped;  // why it did not run
};

constexpr const char* kStyle = R"(
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; margin: 24px; color: #202020; background: #fafafa; }
h1 { margin-bottom: 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ccc; }
.meta { color: #555; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num { text-align: right; font-family: "DejaVu Sans Mono", monospace; }
img { image-rendering: pixelated; image-rendering: crisp-edges; }
.panels { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; width: 200px; background: #fff; border: 1px solid #ddd; padding: 4px; }
figure img { width: 192px; height: auto; display: block; margin: 0 auto; }
figcaption { font-size: 11px; line-height: 1.35; word-wrap: break-word; }
figcaption b { font-size: 12px; }
.tutorial img { max-width: 100%; height: auto; }
.pred { font-size: 15px; }
.ok { color: #1a7f1a; } .wrong { color: #b00020; }
.skipped { color: #999; font-style: italic; }
)";

// Only a probe for automated checks (tests/tools/test_report.cpp): the page needs no script.
constexpr const char* kProbe = R"(<script>
window.addEventListener('load', function () {
  var images = document.images, loaded = 0;
  for (var i = 0; i < images.length; i++)
    if (images[i].complete && images[i].naturalWidth > 0) loaded++;
  document.body.dataset.imagesLoaded = String(loaded);
  document.body.dataset.imagesTotal = String(images.length);
  document.title += ' [' + loaded + '/' + images.length + ' images loaded]';
});
</script>)";

// The tutorial's conv2; for an imported model the top-level block of its last convolution
// (layer4 of a torchvision ResNet, GradCAM's usual choice), or that convolution itself.
std::string default_layer(nn::Module& model) {
#if GRADLENS_WITH_ONNX
  if (const auto* graph = dynamic_cast<const onnx::OnnxModel*>(&model)) {
    std::string last;
    for (const onnx::NodeInfo& node : graph->nodes())
      if (node.op_type == "Conv") last = node.module_path;
    if (!last.empty()) return last.substr(0, last.find('.'));
    throw std::invalid_argument(
        "--layer: " + std::string("the model has no Conv node; name the layer methods' layer"));
  }
#endif
  (void)model;
  return "conv2";
}

void run_report(const ReportOptions& o) {
  const auto start = Clock::now();
  const Device device = Device::parse(o.device);
  apply_precision(o.precision, device);
  apply_threads(o.threads);
  if (o.scale < 1 || o.scale > 32) fail("--scale must be in 1..32, got " + std::to_string(o.scale));
  if (o.nt_samples < 1) fail("--nt-samples must be >= 1, got " + std::to_string(o.nt_samples));
  if (o.out.empty()) fail("--out: no directory given");
  if (o.target != "label" && o.target != "predicted")
    fail("--target: '" + o.target + "' is not label or predicted");
  std::vector<MethodSpec> specs = choose_methods(o);
  check_onnx_flags(o.model, o.onnx);
  if (parse_only()) return;

  const std::unique_ptr<nn::Module> model = load_model_file(o.model, o.allow_nonfinite, o.onnx);
  nn::Module& net = *model;
  const std::string layer = o.layer.empty() ? default_layer(net) : o.layer;
  for (MethodSpec& spec : specs) {
    if (!attr::method_info(spec.method).takes_layer) continue;
    spec.args.values["layer"] = layer;
    if (const auto at = spec.title.find("(conv2)"); at != std::string::npos)
      spec.title.replace(at, 7, "(" + layer + ")");
  }
  net.to(device);

  const data::CifarSplit test = data::load_cifar10(o.data_dir, false);
  const std::vector<std::int64_t> ids = parse_indices(o.indices, test.size(), "--indices");
  const std::int64_t n = static_cast<std::int64_t>(ids.size());
  const Tensor x_cpu = data::to_normalized_tensor(test, ids);
  const Tensor x = x_cpu.to(device);
  std::vector<std::int64_t> labels;
  for (std::int64_t id : ids) labels.push_back(test.labels[static_cast<std::size_t>(id)]);

  // Predictions and their softmax probabilities (the tutorial's F.softmax(outputs, 1)).
  std::vector<float> logits;
  {
    NoGradGuard no_grad;
    logits = net(x).to(kCPU).to_vector();
  }
  const int classes = static_cast<int>(data::kCifarClasses);
  std::vector<std::int64_t> predicted(static_cast<std::size_t>(n));
  std::vector<std::vector<double>> probs(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = logits.data() + i * classes;
    for (int c = 0; c < classes; ++c) {
      if (!std::isfinite(row[c]))
        fail(o.model + ": non-finite logits [" + std::to_string(n) + ", 10] for test image " +
             std::to_string(ids[static_cast<std::size_t>(i)]));
    }
    const std::int64_t best = std::max_element(row, row + classes) - row;
    predicted[static_cast<std::size_t>(i)] = best;
    auto& p = probs[static_cast<std::size_t>(i)];
    double total = 0;
    for (int c = 0; c < classes; ++c) {
      p.push_back(std::exp(static_cast<double>(row[c]) - row[best]));
      total += p.back();
    }
    for (double& v : p) v /= total;
  }
  const std::vector<std::int64_t>& targets = o.target == "label" ? labels : predicted;

  // DeepLiftShap and GradientShap need a reference distribution: the reference files use the
  // first 8 training images, so do we when the training batch is there.
  Tensor baseline_set;
  std::string baseline_note;
  const fs::path train_file = fs::path(o.data_dir) / "data_batch_1.bin";
  const bool wants_baselines = std::any_of(specs.begin(), specs.end(), [](const MethodSpec& s) {
    return attr::method_info(s.method).baselines == attr::Baselines::Distribution;
  });
  if (wants_baselines) {
    if (fs::exists(train_file)) {
      const data::CifarSplit train = data::load_cifar10_file(train_file.string());
      const std::vector<std::int64_t> first8 = {0, 1, 2, 3, 4, 5, 6, 7};
      baseline_set = data::to_normalized_tensor(train, first8).to(device);
      baseline_note = "training images 0..7 of " + train_file.string();
    } else {
      baseline_note = "not run: " + train_file.string() + " is missing";
    }
  }

  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec || !fs::is_directory(o.out)) fail("--out: cannot create directory " + o.out);
  const fs::path dir(o.out);

  std::printf("report: %lld test images (%s) from %s, model %s on %s, %d threads\n",
              static_cast<long long>(n),
              o.indices.c_str(),
              o.data_dir.c_str(),
              o.model.c_str(),
              device.str().c_str(),
              num_threads());
  std::fflush(stdout);

  // Every method on every image, one batched call per method.
  std::vector<MethodRun> runs;
  for (const MethodSpec& spec : specs) {
    MethodRun run;
    run.spec = &spec;
    const bool shap = attr::method_info(spec.method).baselines == attr::Baselines::Distribution;
    const std::unique_ptr<attr::Attribution> method =
        attr::make_method(spec.method, net, spec.args);
    run.description = attr::describe_method(spec.method, spec.args);
    if (shap && !baseline_set.defined()) {
      run.skipped = baseline_note;
      std::printf("  %-22s skipped (%s)\n", spec.key.c_str(), run.skipped.c_str());
      runs.push_back(std::move(run));
      continue;
    }
    const auto t0 = Clock::now();
    attr::Attributions result;
    try {
      result = method->attribute(x, targets, shap ? baseline_set : Tensor());
    } catch (const UncoveredOpError& e) {
      // A method whose rules do not cover one of the model's ops (LRP on a BatchNorm ResNet):
      // the page says why, the other methods still run.
      run.skipped = e.what();
      std::printf("  %-22s skipped (%s)\n", spec.key.c_str(), run.skipped.c_str());
      runs.push_back(std::move(run));
      continue;
    }
    const Tensor values =
        attr::upsample_layer_maps(spec.method, spec.args, result.values, kSize, kSize).to(kCPU);
    const Tensor delta = result.delta.defined() ? result.delta.to(kCPU) : Tensor();
    run.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    const Shape& s = values.shape();
    if (s.size() != 4 || s[0] != n || (s[1] != 1 && s[1] != 3) || s[2] != kSize || s[3] != kSize)
      fail(spec.key + ": attributions are " + shape_str(s) + ", expected [" + std::to_string(n) +
           ", 3 (or 1), 32, 32]");
    run.channels = s[1];
    run.values = values.to_vector();
    if (delta.defined()) {
      run.delta = delta.to_vector();
      run.deltas_per_image = delta.numel() / n;
    }
    std::printf("  %-22s %8.1f ms\n", spec.key.c_str(), run.seconds * 1e3);
    std::fflush(stdout);
    runs.push_back(std::move(run));
  }

  // Pictures: the grid, then per image the original and one panel per method.
  std::vector<std::vector<std::string>> captions;
  for (std::int64_t i = 0; i < n; ++i) {
    captions.push_back({"true: " + class_name(labels[static_cast<std::size_t>(i)]),
                        "pred: " + class_name(predicted[static_cast<std::size_t>(i)])});
  }
  const Picture grid = save(dir, "grid.png", viz::labelled_grid(x_cpu, captions, 5));

  viz::RenderOptions render;
  render.method = viz::Method::BlendedHeatMap;
  render.scale = o.scale;
  render.colorbar = true;
  const std::vector<float> x_all = x_cpu.to_vector();
  const std::size_t image_values = 3 * kSize * kSize;

  std::ostringstream images_html;
  int picture_count = 1;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::size_t si = static_cast<std::size_t>(i);
    const std::string id = std::to_string(ids[si]);
    const std::string stem = "image" + id;
    const std::vector<float> original = viz::original_from_normalized_chw(
        std::span<const float>(x_all.data() + si * image_values, image_values), kSize, kSize);
    const std::vector<int> prepared = viz::prepare_image(original);

    // Captum needs a map even for original_image; its values are ignored.
    viz::NormalizedMap blank;
    blank.height = blank.width = kSize;
    blank.values.assign(kSize * kSize, 0.f);
    viz::RenderOptions plain = render;
    plain.method = viz::Method::OriginalImage;
    const viz::Image original_panel =
        viz::render_panel(blank, viz::Sign::AbsoluteValue, prepared, plain);
    const Picture original_pic = save(dir, stem + "_original.png", original_panel);
    ++picture_count;

    std::vector<viz::Image> tutorial_panels = {original_panel};
    std::vector<std::string> tutorial_titles = {"original"};
    std::ostringstream panels;
    panels << "<figure>" << img_tag(original_pic, "test image " + id, "panel")
           << "<figcaption><b>Original image</b><br>x / 2 + 0.5 (the tutorial's "
              "original_image)</figcaption></figure>\n";
    for (const MethodRun& run : runs) {
      const MethodSpec& spec = *run.spec;
      if (!run.skipped.empty()) {
        panels << "<figure class=\"skipped\"><figcaption><b>" << viz::html_escape(spec.title)
               << "</b><br>" << viz::html_escape(run.skipped) << "</figcaption></figure>\n";
        continue;
      }
      const std::size_t per = static_cast<std::size_t>(run.channels) * kSize * kSize;
      const Shape map_shape = {run.channels, kSize, kSize};
      const viz::NormalizedMap map = viz::normalize_attr(
          std::span<const float>(run.values.data() + si * per, per),
          viz::Layout::CHW,
          static_cast<int>(run.channels),
          kSize,
          kSize,
          spec.sign,
          spec.outlier_perc,
          spec.key + " attribution " + shape_str(map_shape) + " of test image " + id);
      const viz::Image panel = viz::render_panel(map, spec.sign, prepared, render);
      const Picture pic = save(dir, stem + "_" + spec.key + ".png", panel);
      ++picture_count;
      if (!spec.tutorial_title.empty()) {
        tutorial_panels.push_back(panel);
        tutorial_titles.push_back(spec.png_title);
      }

      std::string delta_text;
      if (run.deltas_per_image == 1) {
        delta_text = "convergence delta " + general(run.delta[si]);
      } else if (run.deltas_per_image > 1) {
        float worst = 0.f;
        for (std::int64_t k = 0; k < run.deltas_per_image; ++k)
          worst = std::max(worst,
                           std::fabs(run.delta[si * static_cast<std::size_t>(run.deltas_per_image) +
                                               static_cast<std::size_t>(k)]));
        delta_text = "convergence delta: max |delta| " + general(worst) + " over " +
                     std::to_string(run.deltas_per_image) + " rows";
      } else {
        delta_text = "convergence delta: none";
      }
      panels << "<figure>" << img_tag(pic, spec.title + " for test image " + id, "panel")
             << "<figcaption><b>" << viz::html_escape(spec.title) << "</b><br>"
             << viz::html_escape(run.description)
             << "<br>blended_heat_map, sign=" << viz::to_string(spec.sign)
             << ", outlier_perc=" << general(spec.outlier_perc) << ", threshold "
             << general(map.threshold) << "<br>" << viz::html_escape(delta_text) << "<br>time "
             << fixed(run.seconds * 1e3, 1) << " ms for " << n << " image" << (n == 1 ? "" : "s");
      if (!map.warning.empty()) panels << "<br>warning: " << viz::html_escape(map.warning);
      panels << "</figcaption></figure>\n";
    }

    const std::int64_t label = labels[si], pred = predicted[si];
    const double p = probs[si][static_cast<std::size_t>(pred)];
    const std::string header = "test image " + id + ": label " + class_name(label) +
                               ", predicted " + class_name(pred) + " (p=" + fixed(p, 3) + ")";
    std::string tutorial_html;
    if (tutorial_panels.size() > 1) {
      const Picture fig = save(
          dir, stem + "_tutorial.png", viz::titled_row(tutorial_panels, tutorial_titles, header));
      ++picture_count;
      tutorial_html =
          "<div class=\"tutorial\">" + img_tag(fig, "the tutorial's figures", "fig") + "</div>\n";
    }
    std::vector<int> order(static_cast<std::size_t>(classes));
    for (int c = 0; c < classes; ++c) order[static_cast<std::size_t>(c)] = c;
    std::sort(order.begin(), order.end(), [&](int a, int b) {
      return probs[si][static_cast<std::size_t>(a)] > probs[si][static_cast<std::size_t>(b)];
    });
    images_html << "<section id=\"image" << id << "\"><h2>Test image " << id << ": "
                << class_name(label) << "</h2>\n<p class=\"pred\">Ground truth <b>"
                << class_name(label) << "</b>; predicted <b class=\""
                << (label == pred ? "ok" : "wrong") << "\">" << class_name(pred)
                << "</b> with probability <b>" << fixed(p, 3)
                << "</b> (softmax of the logits); attributions for target <b>"
                << class_name(targets[si]) << "</b> (" << o.target << ").<br>"
                << "<span class=\"meta\">Top 3: ";
    for (int k = 0; k < 3; ++k) {
      const int c = order[static_cast<std::size_t>(k)];
      images_html << (k ? ", " : "") << class_name(c) << " "
                  << fixed(probs[si][static_cast<std::size_t>(c)], 3);
    }
    images_html << "</span></p>\n"
                << "<h3>The tutorial's figures</h3>\n"
                << tutorial_html << "<h3>Every method</h3>\n<div class=\"panels\">\n"
                << panels.str() << "</div></section>\n";
  }

  // The page.
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
       << "<title>gradlens report: " << n << " CIFAR-10 test images</title>\n<style>" << kStyle
       << "</style>\n"
       << kProbe << "\n</head><body>\n"
       << "<h1>gradlens report</h1>\n<p class=\"meta\">Model " << viz::html_escape(o.model)
       << " on " << device.str() << " (" << num_threads() << " threads); CIFAR-10 test set from "
       << viz::html_escape(o.data_dir) << "; images " << viz::html_escape(o.indices)
       << ". The pictures follow Captum's CIFAR-10 tutorial (CIFAR_TorchVision_Interpret): "
          "visualize_image_attr's normalization, colour maps and blended_heat_map.</p>\n";

  html << "<h2>Test images</h2>\n<p>" << img_tag(grid, "make_grid of the test images", "grid")
       << "</p>\n<table><tr><th></th>";
  for (std::int64_t i = 0; i < n; ++i)
    html << "<th><a href=\"#image" << ids[static_cast<std::size_t>(i)] << "\">#"
         << ids[static_cast<std::size_t>(i)] << "</a></th>";
  html << "</tr>\n<tr><th>GroundTruth</th>";
  for (std::int64_t i = 0; i < n; ++i)
    html << "<td>" << class_name(labels[static_cast<std::size_t>(i)]) << "</td>";
  html << "</tr>\n<tr><th>Predicted</th>";
  for (std::int64_t i = 0; i < n; ++i) {
    const std::size_t si = static_cast<std::size_t>(i);
    html << "<td class=\"" << (labels[si] == predicted[si] ? "ok" : "wrong") << "\">"
         << class_name(predicted[si]) << "</td>";
  }
  html << "</tr>\n<tr><th>Probability</th>";
  for (std::int64_t i = 0; i < n; ++i) {
    const std::size_t si = static_cast<std::size_t>(i);
    html << "<td class=\"num\">" << fixed(probs[si][static_cast<std::size_t>(predicted[si])], 3)
         << "</td>";
  }
  html << "</tr></table>\n";

  html << "<h2>Methods</h2>\n<table><tr><th>method</th><th>parameters</th><th>drawn as</th>"
          "<th>convergence delta</th><th>time ("
       << n << " images)</th></tr>\n";
  for (const MethodRun& run : runs) {
    const MethodSpec& spec = *run.spec;
    html << "<tr><td>" << viz::html_escape(spec.title);
    if (!spec.tutorial_title.empty())
      html << "<br><span class=\"meta\">tutorial: " << viz::html_escape(spec.tutorial_title)
           << "</span>";
    html << "</td><td>" << viz::html_escape(run.description);
    if (attr::method_info(spec.method).baselines == attr::Baselines::Distribution)
      html << "<br>baselines: " << viz::html_escape(baseline_note);
    html << "</td><td>blended_heat_map, sign=" << viz::to_string(spec.sign)
         << ", outlier_perc=" << general(spec.outlier_perc) << "</td><td>"
         << (run.deltas_per_image == 0   ? "none"
             : run.deltas_per_image == 1 ? "one per image"
                                         : std::to_string(run.deltas_per_image) + " rows per image")
         << "</td><td class=\"num\">"
         << (run.skipped.empty() ? fixed(run.seconds * 1e3, 1) + " ms" : "skipped")
         << "</td></tr>\n";
  }
  html << "</table>\n" << images_html.str();
  const double total = std::chrono::duration<double>(Clock::now() - start).count();
  html << "<p class=\"meta\">Written by gradlens report in " << fixed(total, 2)
       << " s. Every picture is also a PNG file beside this page.</p>\n</body></html>\n";
  viz::write_file_atomic((dir / "index.html").string(), html.str());
  std::printf("wrote %s (%d PNGs beside it) in %.2f s\n",
              (dir / "index.html").string().c_str(),
              picture_count,
              std::chrono::duration<double>(Clock::now() - start).count());
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto o = std::make_shared<ReportOptions>();
  CLI::App* cmd = app.add_subcommand(
      "report", "write an HTML page of the tutorial's figures and every method for test images");
  cmd->add_option("--model", o->model, "model file (safetensors state_dict, or .onnx)")
      ->capture_default_str();
  cmd->add_option("--layer",
                  o->layer,
                  "the layer of Layer GradCAM and Guided GradCAM (default: conv2, or the block "
                  "of an ONNX model's last Conv)");
  cmd->add_flag("--allow-nonfinite", o->allow_nonfinite, "load a model with NaN or Inf weights");
  add_onnx_flags(cmd, o->onnx);
  cmd->add_option("--data", o->data_dir, "CIFAR-10 binary directory")->capture_default_str();
  cmd->add_option("--indices", o->indices, "test images: 0:4, 3 or 0,3,5")->capture_default_str();
  cmd->add_option("--out", o->out, "directory for index.html and the PNGs")->capture_default_str();
  cmd->add_option(
         "--methods", o->methods, "all, tutorial, or a comma list (e.g. saliency,deeplift)")
      ->capture_default_str();
  cmd->add_option("--target", o->target, "label (as the tutorial) or predicted")
      ->capture_default_str();
  cmd->add_option("--nt-samples", o->nt_samples, "NoiseTunnel samples (the tutorial: 100)")
      ->capture_default_str();
  cmd->add_option("--stdevs", o->stdevs, "NoiseTunnel noise standard deviation")
      ->capture_default_str();
  cmd->add_option("--n-steps", o->n_steps, "integrated_gradients steps")->capture_default_str();
  cmd->add_option("--scale", o->scale, "pixels per image pixel in the PNGs")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the random draws")->capture_default_str();
  cmd->add_option("--device", o->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--precision", o->precision, kPrecisionHelp)->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0 = every core)")->capture_default_str();
  cmd->callback([o] { run_report(*o); });
}

}  // namespace gradlens::cli
