// gradlens attribute METHOD: explains the Net's predictions on CIFAR-10 images (or tensors from a
// file) with any attribution method, optionally inside a NoiseTunnel; prints what it did and how
// long it took, and writes the attributions (and convergence deltas) as safetensors. With
// --out DIR/ it streams the chosen images of a split through the method a shard at a time and
// writes each shard as it finishes (shards.h): resumable, and sliced across jobs with --shard K/N.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>

#include "gradlens/attr/attribution.h"
#include "gradlens/attr/registry.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/data/cifar10.h"
#include "gradlens/data/fetch.h"
#include "gradlens/data/transforms.h"
#include "gradlens/kernels/backend.h"
#include "gradlens/kernels/build_info.h"
#include "gradlens/nn/safetensors.h"
#include "tools/gradlens/commands.h"
#include "tools/gradlens/common.h"
#include "tools/gradlens/method_flags.h"
#include "tools/gradlens/shards.h"

namespace gradlens::cli {

namespace {

struct AttributeOptions {
  std::string method;
  attr::MethodArgs args;
  MethodFlags flags;
  std::string model = "cifar_net.safetensors";
  bool allow_nonfinite = false;  // load a model with NaN or Inf weights
  OnnxFlags onnx;
  std::string data_dir = ".data/cifar10";
  std::string indices;  // "" = image 3 of the test set, or every row of --inputs
  std::string inputs_file;
  std::string target = "label";
  std::string baselines = "zero";
  std::string feature_mask_file;
  std::string draws_file;
  std::string draws_prefix;
  std::string memory_budget;
  std::string device = "cpu";
  std::string precision = "float32";
  int threads = 0;
  std::string out;
  std::string split = "test";
  std::string shard;  // "K/N", or "" = all
  bool resume = false;
  std::int64_t images_per_shard = 256;
  std::int64_t images_per_call = 0;  // 0: one shard on the CPU, kGpuImagesPerCall on a GPU
};

// Images one GPU call may take across shards (run_sharded says why).
constexpr std::int64_t kGpuImagesPerCall = 2048;

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

// A link loop or an unreadable folder is named as such, not as "not found".
void require_file(const std::string& path, const std::string& flag) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    fail(flag + ": " + path + ": " + (ec ? ec.message() : std::string("file not found")));
}

nn::SafetensorsFile open_file(const std::string& path, const std::string& flag) {
  require_file(path, flag);
  try {
    return nn::SafetensorsFile::load(path);
  } catch (const std::runtime_error& e) {
    fail(flag + ": " + e.what());
  }
}

bool is_train_split(const std::string& split) {
  if (split != "test" && split != "train")
    fail("--split: expected test or train, got '" + split + "'");
  return split == "train";
}

// The images to explain, their labels (-1 when unknown) and where they came from.
struct Inputs {
  Tensor images;
  std::vector<std::int64_t> labels;
  std::vector<std::int64_t> ids;  // test-set indices, or rows of --inputs
  std::string source;
};

Inputs load_inputs(const AttributeOptions& o) {
  Inputs in;
  if (!o.inputs_file.empty()) {
    const auto file = open_file(o.inputs_file, "--inputs");
    if (!file.contains("inputs")) fail("--inputs: " + o.inputs_file + " has no tensor 'inputs'");
    const Tensor all = file.tensor("inputs");
    const Shape& s = all.shape();
    if (s.size() != 4 || s[1] != 3 || s[2] != 32 || s[3] != 32 || s[0] < 1)
      fail("--inputs: tensor 'inputs' is " + shape_str(s) + ", the Net takes [N, 3, 32, 32]");
    std::vector<std::int64_t> labels(static_cast<std::size_t>(s[0]), -1);
    if (file.contains("labels")) {
      labels = file.int64s("labels");
      if (static_cast<std::int64_t>(labels.size()) != s[0])
        fail("--inputs: " + std::to_string(labels.size()) + " labels for " + std::to_string(s[0]) +
             " inputs in " + o.inputs_file);
      for (std::size_t i = 0; i < labels.size(); ++i) {
        if (labels[i] < 0 || labels[i] >= data::kCifarClasses)
          fail("--inputs: label " + std::to_string(labels[i]) + " of image " + std::to_string(i) +
               " in " + o.inputs_file + " is not a class 0..9");
      }
    }
    // NaN or Inf in an image would give all-zero or NaN attributions without a word.
    const std::vector<float> pixels = all.to_vector();
    const std::size_t per_image = pixels.size() / static_cast<std::size_t>(s[0]);
    for (std::size_t k = 0; k < pixels.size(); ++k) {
      if (!std::isfinite(pixels[k]))
        fail("--inputs: image " + std::to_string(k / per_image) + " of " + o.inputs_file +
             " holds " + (std::isnan(pixels[k]) ? "NaN" : "an infinite value"));
    }
    if (o.indices.empty()) {
      in.ids.resize(labels.size());
      for (std::size_t i = 0; i < in.ids.size(); ++i) in.ids[i] = static_cast<std::int64_t>(i);
      in.images = all;
    } else {
      in.ids = parse_indices(o.indices, s[0], "--indices");
      in.images = index_rows(all, in.ids);
    }
    for (std::int64_t id : in.ids) in.labels.push_back(labels[static_cast<std::size_t>(id)]);
    in.source = o.inputs_file;
    return in;
  }
  const data::CifarSplit split = data::load_cifar10(o.data_dir, is_train_split(o.split));
  in.ids = parse_indices(o.indices.empty() ? "3" : o.indices, split.size(), "--indices");
  in.images = data::to_normalized_tensor(split, in.ids);
  for (std::int64_t id : in.ids) in.labels.push_back(split.labels[static_cast<std::size_t>(id)]);
  in.source = "CIFAR-10 " + o.split + " set (" + o.data_dir + ")";
  return in;
}

std::vector<std::int64_t> choose_targets(const std::string& how,
                                         const Inputs& in,
                                         const std::vector<std::int64_t>& predicted) {
  if (how == "label") {
    if (std::find(in.labels.begin(), in.labels.end(), -1) != in.labels.end())
      fail("--target label: " + in.source +
           " has no tensor 'labels'; use --target predicted or a class number");
    return in.labels;
  }
  if (how == "predicted") return predicted;
  std::int64_t t = -1;
  try {
    std::size_t used = 0;
    t = std::stoll(how, &used);
    if (used != how.size()) t = -1;
  } catch (const std::exception&) {
    t = -1;
  }
  if (t < 0 || t >= data::kCifarClasses)
    fail("--target: '" + how + "' is not label, predicted or a class 0..9");
  return std::vector<std::int64_t>(in.labels.size(), t);
}

Tensor load_baselines(const std::string& spec) {
  if (spec == "zero" || spec == "zeros") return {};
  require_file(spec, "--baselines");
  try {
    return attr::load_baselines(spec);
  } catch (const std::exception& e) {
    fail(std::string("--baselines: ") + e.what());
  }
}

std::string join_ints(const std::vector<std::int64_t>& v, std::size_t max_items = 16) {
  std::string s;
  for (std::size_t i = 0; i < v.size() && i < max_items; ++i) {
    if (i) s += ' ';
    s += std::to_string(v[i]);
  }
  if (v.size() > max_items) s += " ... (" + std::to_string(v.size()) + " in all)";
  return s;
}

std::string duration_text(double seconds) {
  const long long s = static_cast<long long>(seconds + 0.5);
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%lldh%02lldm", s / 3600, s % 3600 / 60);
  } else {
    std::snprintf(text, sizeof text, "%lldm%02llds", s / 60, s % 60);
  }
  return text;
}

// One call's results on the host, for the consecutive shards it covers.
struct CallResults {
  std::int64_t first = 0;  // the position of its first image
  Tensor values, delta;    // delta: a row per image, or per image and sample (NoiseTunnel's)
  std::vector<std::int64_t> ids, targets, predicted;
};

// Writes each shard (first position, count) of `shards` out of the call's results, atomically.
void write_shards(const CallResults& call,
                  std::span<const std::pair<std::int64_t, std::int64_t>> shards,
                  const std::string& dir,
                  const std::string& description) {
  const auto images = static_cast<std::int64_t>(call.ids.size());
  for (const auto& shard : shards) {
    const std::int64_t shard_begin = shard.first, count = shard.second,
                       row = shard_begin - call.first;
    const auto rows = [&](const std::vector<std::int64_t>& v) {
      return std::vector<std::int64_t>(v.begin() + row, v.begin() + row + count);
    };
    nn::SafetensorsWriter writer;
    writer.add("attributions", slice(call.values, row, row + count));
    if (call.delta.defined()) {
      const std::int64_t per_image = call.delta.size(0) / images;
      writer.add("delta", slice(call.delta, row * per_image, (row + count) * per_image));
    }
    writer.add_int64("indices", rows(call.ids), {count});
    writer.add_int64("targets", rows(call.targets), {count});
    writer.add_int64("predicted", rows(call.predicted), {count});
    writer.set_metadata("method", description);
    writer.save(shard_file(dir, shard_begin, count));
  }
}

// --out DIR/: the chosen images of the split, in order, a shard of --images-per-shard at a time
// (the method chunks each shard's rows to the memory budget), each shard written as it finishes.
void run_sharded(const AttributeOptions& o,
                 attr::Attribution& method,
                 const std::string& description,
                 nn::Module& net,
                 Device device) {
  if (!o.inputs_file.empty())
    fail("--out DIR/ streams a CIFAR-10 split (--data, --split); --inputs writes one file");
  if (o.images_per_shard < 1) fail("--images-per-shard must be >= 1");
  if (o.images_per_call < 0) fail("--images-per-call must be >= 0 (0: automatic)");
  std::string dir = o.out;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::filesystem::create_directories(dir);
  const data::CifarSplit split = data::load_cifar10(o.data_dir, is_train_split(o.split));
  const std::string spec = o.indices.empty() ? "all" : o.indices;
  const std::vector<std::int64_t> planned = parse_indices(spec, split.size(), "--indices");
  const auto [job, jobs] =
      o.shard.empty() ? std::pair<std::int64_t, std::int64_t>{0, 1} : parse_shard(o.shard);
  // Everything that decides the numbers; not the device, the threads or where the data lives.
  const nlohmann::json manifest = {
      {"gradlens", build_info().version},
      {"method", description},
      {"model_md5", data::md5_file(o.model)},
      {"weights_md5", o.onnx.weights.empty() ? "" : data::md5_file(o.onnx.weights)},
      {"fold_batchnorm", o.onnx.fold_batchnorm},
      {"split", o.split},
      {"split_size", split.size()},
      {"indices", spec},
      {"images", planned.size()},
      {"images_per_shard", o.images_per_shard},
      {"target", o.target},
      {"baselines", o.baselines},
      {"draws", o.draws_file + (o.draws_prefix.empty() ? "" : "#" + o.draws_prefix)},
      {"precision", o.precision},
      {"seed", o.args.has("seed") ? o.args.text("seed") : "0"}};
  write_or_check_manifest(dir, manifest);

  const auto [begin, end] = shard_slice(static_cast<std::int64_t>(planned.size()), job, jobs);
  std::vector<std::pair<std::int64_t, std::int64_t>> todo;  // (first position, count)
  std::int64_t done_before = 0;
  for (std::int64_t b = begin; b < end; b += o.images_per_shard) {
    const std::int64_t count = std::min(o.images_per_shard, end - b);
    if (std::filesystem::exists(shard_file(dir, b, count))) {
      if (!o.resume)
        fail(shard_file(dir, b, count) +
             " exists: pass --resume to continue the run, or use "
             "another --out directory");
      done_before += count;
      continue;
    }
    todo.emplace_back(b, count);
  }
  Tensor baselines = load_baselines(o.baselines);
  if (baselines.defined()) baselines = baselines.to(device);
  std::printf("method:      %s\n", description.c_str());
  std::printf(
      "images:      %lld of the CIFAR-10 %s set (%s), job %lld/%lld: positions %lld..%lld, "
      "%lld already written\n",
      static_cast<long long>(planned.size()),
      o.split.c_str(),
      spec.c_str(),
      static_cast<long long>(job),
      static_cast<long long>(jobs),
      static_cast<long long>(begin),
      static_cast<long long>(end - 1),
      static_cast<long long>(done_before));
  std::printf("output:      %s/ (%zu shards to write)\n", dir.c_str(), todo.size());
  std::fflush(stdout);

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  std::int64_t done = 0, remaining = 0;
  for (const auto& [b, count] : todo) remaining += count;
  // On a GPU, one call takes consecutive shards up to kGpuImagesPerCall images: a shard's 256
  // images at 50 IG steps are 12,800 rows, which an H200 ran at under half the rows per second
  // of 50,000 (IG over the test set, shard by shard: 1.05M against 2.4M). An image's random
  // draws are its own, whatever call it is in.
  const std::int64_t per_call =
      o.images_per_call > 0 ? o.images_per_call : (device.is_cpu() ? 1 : kGpuImagesPerCall);
  const std::int64_t job_images = end - begin;  // a plain copy: lambdas may not capture bindings
  std::future<void> writing;                    // the previous call's shards
  for (std::size_t first = 0; first < todo.size();) {
    std::size_t last = first + 1;  // the call takes todo[first, last)
    std::int64_t images = todo[first].second;
    while (last < todo.size() && todo[last].first == todo[last - 1].first + todo[last - 1].second &&
           images + todo[last].second <= per_call) {
      images += todo[last].second;
      ++last;
    }
    const std::int64_t b = todo[first].first;
    Inputs in;
    in.ids.assign(planned.begin() + b, planned.begin() + b + images);
    for (std::int64_t id : in.ids) in.labels.push_back(split.labels[static_cast<std::size_t>(id)]);
    in.source = "CIFAR-10 " + o.split + " set";
    const Tensor x = data::to_normalized_tensor(split, in.ids).to(device);
    std::vector<std::int64_t> predicted = nn::predict(net, x);
    std::vector<std::int64_t> targets = choose_targets(o.target, in, predicted);
    method.set_image_ids(in.ids);
    attr::Attributions result = method.attribute(x, targets, baselines);
    CallResults call{
        .first = b,
        .values = attr::upsample_layer_maps(o.method, o.args, result.values, x.size(2), x.size(3))
                      .to(kCPU),
        .delta = result.delta.defined() ? result.delta.to(kCPU) : Tensor{},
        .ids = std::move(in.ids),
        .targets = std::move(targets),
        .predicted = std::move(predicted)};
    // The shards are written (each fsynced) while the next call computes; a failed write
    // surfaces here at the next call or after the last.
    if (writing.valid()) writing.get();
    const std::span shards(todo.begin() + static_cast<std::ptrdiff_t>(first),
                           todo.begin() + static_cast<std::ptrdiff_t>(last));
    writing = std::async(std::launch::async, [&, shards, images, call = std::move(call)] {
      write_shards(call, shards, dir, description);
      done += images;
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      const double rate = done / std::max(seconds, 1e-9);
      std::fprintf(stderr,
                   "gradlens: %lld/%lld images, %.1f images/s, %s left\n",
                   static_cast<long long>(done_before + done),
                   static_cast<long long>(job_images),
                   rate,
                   duration_text(static_cast<double>(remaining - done) / rate).c_str());
    });
    first = last;
  }
  if (writing.valid()) writing.get();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("took %.2f s (%.3g images/s); wrote %zu shards to %s/\n",
              seconds,
              done / std::max(seconds, 1e-9),
              todo.size(),
              dir.c_str());
}

bool is_directory_output(const std::string& out) {
  return !out.empty() && (out.back() == '/' || std::filesystem::is_directory(out));
}

void run_attribute(AttributeOptions& o) {
  attr::MethodArgs& args = o.args;
  const Device device = Device::parse(o.device);
  apply_precision(o.precision, device);
  apply_threads(o.threads);
  o.flags.collect(args);
  if (!o.memory_budget.empty())
    args.memory_budget = parse_bytes(o.memory_budget, "--memory-budget");
  // The command line's models have no stateful hooks outside the layer methods' own attribute
  // calls, so independent chunks may run one a CPU thread.
  args.concurrency = 0;
  if (!o.feature_mask_file.empty() && !parse_only()) {
    const auto file = open_file(o.feature_mask_file, "--feature-mask");
    if (!file.contains("feature_mask"))
      fail("--feature-mask: " + o.feature_mask_file + " has no tensor 'feature_mask'");
    args.feature_mask = file.int64s("feature_mask");
    args.mask_shape = file.shape("feature_mask");
  }
  if (!o.draws_file.empty() && !parse_only()) {
    require_file(o.draws_file, "--draws");
    try {
      args.draws = attr::load_draws(o.draws_file, o.draws_prefix);
    } catch (const std::exception& e) {
      fail(std::string("--draws: ") + e.what());
    }
    if (args.draws->noise.defined()) args.draws->noise = args.draws->noise.to(device);
  }

  // Parse-only runs (the fuzzer's, thousands a second) check the method against one Net made once:
  // its random initialisation is most of a parse, and its weights are never used.
  // An .onnx model is read first (its layers come from the file); the tutorial Net's weights are
  // read after the method is checked.
  const auto parse_only_net = []() -> nn::Net& {
    static nn::Net net;
    return net;
  };
  check_onnx_flags(o.model, o.onnx);
  const bool onnx_model = is_onnx_file(o.model) && !parse_only();
  std::unique_ptr<nn::Module> owned;
  if (!parse_only())
    owned = onnx_model ? load_model_file(o.model, o.allow_nonfinite, o.onnx)
                       : std::make_unique<nn::Net>();
  nn::Module& net = parse_only() ? parse_only_net() : *owned;
  // Bad methods, options and layers fail here, before any file is read or written.
  const std::unique_ptr<attr::Attribution> method =
      MethodFlags::in_flag_terms([&] { return attr::make_method(o.method, net, args); });
  const std::string description = attr::describe_method(o.method, args);
  if (parse_only()) return;
  if (!onnx_model) load_model(net, o.model, o.allow_nonfinite);
  net.to(device);
  if (is_directory_output(o.out)) {
    run_sharded(o, *method, description, net, device);
    return;
  }
  if (!o.shard.empty() || o.resume) fail("--shard and --resume need --out DIR/ (a directory)");
  if (!o.out.empty()) check_output_file("--out", o.out);  // before the work, not after it

  Inputs in = load_inputs(o);
  const Tensor x = in.images.to(device);
  const std::vector<std::int64_t> predicted = nn::predict(net, x);
  const std::vector<std::int64_t> targets = choose_targets(o.target, in, predicted);
  Tensor baselines = load_baselines(o.baselines);
  if (baselines.defined()) baselines = baselines.to(device);

  std::printf("method:      %s\n", description.c_str());
  std::printf(
      "model:       %s on %s, %d threads\n", o.model.c_str(), device.str().c_str(), num_threads());
  std::printf("images:      %lld from %s: %s\n",
              static_cast<long long>(in.ids.size()),
              in.source.c_str(),
              join_ints(in.ids).c_str());
  std::printf("targets:     %s: %s\n", o.target.c_str(), join_ints(targets).c_str());
  std::printf("baselines:   %s%s\n",
              o.baselines.c_str(),
              baselines.defined() ? (" " + shape_str(baselines.shape())).c_str() : "");
  if (!o.draws_file.empty())
    std::printf("draws:       %s (prefix '%s')\n", o.draws_file.c_str(), o.draws_prefix.c_str());
  std::fflush(stdout);

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  method->set_image_ids(in.ids);
  attr::Attributions result = method->attribute(x, targets, baselines);
  result.values = attr::upsample_layer_maps(o.method, args, result.values, x.size(2), x.size(3));
  const Tensor values = result.values.to(kCPU);
  const Tensor delta = result.delta.defined() ? result.delta.to(kCPU) : Tensor();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  std::printf("output:      attributions %s", shape_str(values.shape()).c_str());
  if (delta.defined()) std::printf(", delta %s", shape_str(delta.shape()).c_str());
  std::printf("\n");
  const std::int64_t n = static_cast<std::int64_t>(in.ids.size());
  const std::int64_t deltas_per_image =
      delta.defined() ? delta.numel() / std::max<std::int64_t>(n, 1) : 0;
  if (deltas_per_image > 1)  // DeepLiftShap, GradientShap, NoiseTunnel: one per sample row
    std::printf("|delta| below is the largest of each image's %lld rows\n",
                static_cast<long long>(deltas_per_image));
  const std::vector<float> v = values.to_vector();
  const std::int64_t per_image = values.numel() / std::max<std::int64_t>(n, 1);
  const std::vector<float> d = delta.defined() ? delta.to_vector() : std::vector<float>{};
  std::printf("%8s %-6s %-6s %-6s %12s%s\n",
              "image",
              "label",
              "pred",
              "target",
              "sum(attr)",
              deltas_per_image > 0 ? "      |delta|" : "");
  for (std::int64_t i = 0; i < n; ++i) {
    double total = 0.0;
    for (std::int64_t k = 0; k < per_image; ++k)
      total += v[static_cast<std::size_t>(i * per_image + k)];
    const auto name = [](std::int64_t cls) -> std::string {
      return cls < 0 ? "-" : std::string(data::kCifarClassNames[static_cast<std::size_t>(cls)]);
    };
    std::printf("%8lld %-6s %-6s %-6s %12.5g",
                static_cast<long long>(in.ids[static_cast<std::size_t>(i)]),
                name(in.labels[static_cast<std::size_t>(i)]).c_str(),
                name(predicted[static_cast<std::size_t>(i)]).c_str(),
                name(targets[static_cast<std::size_t>(i)]).c_str(),
                total);
    if (deltas_per_image > 0) {
      float worst = 0.f;
      for (std::int64_t k = 0; k < deltas_per_image; ++k) {
        // A NaN delta prints as nan: std::max would drop it and show 0.
        const float a = std::fabs(d[static_cast<std::size_t>(i * deltas_per_image + k)]);
        worst = std::isnan(a) || std::isnan(worst) ? NAN : std::max(worst, a);
      }
      std::printf(" %12.4g", static_cast<double>(worst));
    }
    std::printf("\n");
  }
  std::printf("took %.1f ms (%.1f images/s)\n", seconds * 1e3, n / std::max(seconds, 1e-9));

  if (!o.out.empty()) {
    nn::SafetensorsWriter writer;
    writer.add("attributions", values);
    if (delta.defined()) writer.add("delta", delta);
    writer.add_int64("targets", targets, {n});
    writer.set_metadata("method", description);
    writer.set_metadata("source", in.source);
    writer.save(o.out);
    std::printf("wrote %s\n", o.out.c_str());
  }
}

}  // namespace

void add_attribute_command(CLI::App& app) {
  auto o = std::make_shared<AttributeOptions>();
  const std::string names = attr::method_names_text();
  CLI::App* cmd = app.add_subcommand(
      "attribute", "explain the Net's predictions with an attribution method (Captum's names)");
  cmd->add_option("method", o->method, "one of: " + names)->required();

  // What to explain.
  cmd->add_option("--model", o->model, "model file (safetensors state_dict)")
      ->capture_default_str();
  cmd->add_flag("--allow-nonfinite", o->allow_nonfinite, "load a model with NaN or Inf weights");
  add_onnx_flags(cmd, o->onnx);
  cmd->add_option("--data", o->data_dir, "CIFAR-10 binary directory")->capture_default_str();
  cmd->add_option(
      "--indices", o->indices, "images: 3, 0:16, 0,3,5 or all (default 3; all for DIR/)");
  cmd->add_option("--inputs", o->inputs_file, "safetensors with 'inputs' [N,3,32,32], 'labels'");
  cmd->add_option("--target", o->target, "label, predicted or a class number 0..9")
      ->capture_default_str();
  cmd->add_option(
         "--baselines", o->baselines, "zero, or a safetensors file ('baselines' or 'baseline_set')")
      ->capture_default_str();

  // The methods' own options, named after Captum's (attr/registry.h), and NoiseTunnel's.
  o->flags.add_to(cmd);
  cmd->add_option("--internal-batch-size",
                  o->args.internal_batch_size,
                  "rows per gradient call (0 = as the memory budget allows)")
      ->capture_default_str();
  cmd->add_option("--memory-budget",
                  o->memory_budget,
                  "most bytes per chunk, e.g. 512M (default: half the free memory; CPU chunks stay "
                  "at 16M, GPU ones fill the budget)");
  cmd->add_option("--feature-mask", o->feature_mask_file, "safetensors with I64 'feature_mask'");
  cmd->add_option(
      "--draws", o->draws_file, "safetensors with saved draws: noise, baseline_index, alphas");
  cmd->add_option("--draws-prefix", o->draws_prefix, "prefix of the draws' names, e.g. nt10.");

  cmd->add_option("--device", o->device, "cpu or cuda")->capture_default_str();

  cmd->add_option("--precision", o->precision, kPrecisionHelp)

      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0 = every core)")->capture_default_str();
  cmd->add_option(
      "--out", o->out, "write 'attributions' (and 'delta') here (safetensors); DIR/ writes shards");
  cmd->add_option("--split", o->split, "test or train")->capture_default_str();
  cmd->add_option("--shard", o->shard, "K/N: the K-th of N disjoint slices of the images (DIR/)");
  cmd->add_flag("--resume", o->resume, "continue a DIR/ run, keeping the shards already written");
  cmd->add_option("--images-per-shard", o->images_per_shard, "images in each shard file (DIR/)")
      ->capture_default_str();
  cmd->add_option("--images-per-call",
                  o->images_per_call,
                  "DIR/: images a call may take, across shards (0: one shard on the CPU, up to " +
                      std::to_string(kGpuImagesPerCall) + " images on a GPU)")
      ->capture_default_str();
  cmd->callback([o] { run_attribute(*o); });
}

}  // namespace gradlens::cli
