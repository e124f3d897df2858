// gradlens train: the tutorial's recipe (SGD lr 0.001, momentum 0.9, batch 4, 5 epochs) as a
// standalone program: progress while it runs, test accuracy at the end, the model written
// atomically; with --checkpoint-every, checkpoints that --resume continues from bit for bit.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/data/dataloader.h"
#include "gradlens/kernels/backend.h"
#include "gradlens/nn/checkpoint.h"
#include "gradlens/nn/loss.h"
#include "gradlens/nn/optim/sgd.h"
#include "gradlens/nn/safetensors.h"
#include "tools/gradlens/commands.h"
#include "tools/gradlens/common.h"

namespace gradlens::cli {

namespace {

struct TrainOptions {
  std::string data_dir = ".data/cifar10";
  int epochs = 5;
  std::int64_t batch_size = 4;
  float lr = 0.001f;
  float momentum = 0.9f;
  std::uint64_t seed = 0;
  int threads = 0;
  std::string device = "cpu";
  std::string precision = "float32";
  std::string out = "cifar_net.safetensors";
  std::int64_t log_every = 2000;
  std::int64_t limit = 0;  // train on the first `limit` shuffled images per epoch (0 = all)
  bool eval_each_epoch = false;
  std::int64_t checkpoint_every = 0;  // steps between checkpoints (0 = none)
  std::string checkpoint;             // default: beside --out
  bool resume = false;
};

// cifar_net.safetensors -> cifar_net.checkpoint.safetensors
std::string default_checkpoint_path(const std::string& out) {
  std::filesystem::path p(out);
  const std::string stem =
      p.extension() == ".safetensors" ? p.stem().string() : p.filename().string();
  return (p.parent_path() / (stem + ".checkpoint.safetensors")).string();
}

// The settings a resumed run must share with the checkpoint's for the same result; the others
// (epochs, device, threads, logging) may change between runs.
std::map<std::string, std::string> fixed_settings(const TrainOptions& o) {
  char lr[32], momentum[32];
  std::snprintf(lr, sizeof lr, "%.9g", static_cast<double>(o.lr));
  std::snprintf(momentum, sizeof momentum, "%.9g", static_cast<double>(o.momentum));
  return {{"model", "Net"},
          {"seed", std::to_string(o.seed)},
          {"batch_size", std::to_string(o.batch_size)},
          {"limit", std::to_string(o.limit)},
          {"lr", lr},
          {"momentum", momentum}};
}

// One scalar on the device, read once a step: sum(g * 0) over every gradient is 0, or NaN when
// any element is NaN or infinite (no gradient is copied to the host unless one is).
bool gradients_finite(const std::vector<nn::Parameter>& params) {
  NoGradGuard no_grad;
  Tensor total;
  for (const nn::Parameter& p : params) {
    const Tensor& g = p.tensor.grad();
    if (!g.defined()) continue;
    const Tensor part = sum(mul(g, Tensor::scalar(0.f, g.device())));
    total = total.defined() ? add(total, part) : part;
  }
  return !total.defined() || std::isfinite(total.item());
}

std::string format_duration(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

void run_train(const TrainOptions& o) {
  if (o.epochs < 1) throw std::runtime_error("--epochs must be >= 1");
  if (o.batch_size < 1) throw std::runtime_error("--batch-size must be >= 1");
  if (o.log_every < 1) throw std::runtime_error("--log-every must be >= 1");
  if (o.limit < 0) throw std::runtime_error("--limit must be >= 0 (0 = every image)");
  if (!std::isfinite(o.lr) || o.lr <= 0.f) throw std::runtime_error("--lr must be a number > 0");
  if (o.checkpoint_every < 0)
    throw std::runtime_error("--checkpoint-every must be >= 0 (0 = no checkpoints)");
  const std::string checkpoint_path =
      o.checkpoint.empty() ? default_checkpoint_path(o.out) : o.checkpoint;
  const bool checkpointing = o.checkpoint_every > 0 || o.resume;
  check_output_file("--out", o.out);
  if (checkpointing) check_output_file("--checkpoint", checkpoint_path);
  const Device device = Device::parse(o.device);
  apply_precision(o.precision, device);
  apply_threads(o.threads);

  if (parse_only()) return;
  const data::CifarSplit train = data::load_cifar10(o.data_dir, true);
  const data::CifarSplit test = data::load_cifar10(o.data_dir, false);
  nn::Net net(o.seed);
  net.to(device);
  nn::SGD optimizer(net.parameters(), {.lr = o.lr, .momentum = o.momentum});
  nn::CrossEntropyLoss criterion;
  data::DataLoader loader(train, o.batch_size, /*shuffle=*/true, o.seed);

  const std::int64_t per_epoch_images =
      o.limit > 0 ? std::min(o.limit, train.size()) : train.size();
  if (o.batch_size > per_epoch_images)
    throw std::runtime_error("--batch-size " + std::to_string(o.batch_size) +
                             " is larger than the " + std::to_string(per_epoch_images) +
                             " images of an epoch");
  // Rounded up without overflowing for any --batch-size.
  const std::int64_t steps_per_epoch =
      per_epoch_images / o.batch_size + (per_epoch_images % o.batch_size != 0 ? 1 : 0);
  const std::int64_t total_steps = steps_per_epoch * o.epochs;
  std::printf(
      "training Net on %lld images x %d epochs, batch %lld, lr %g, momentum %g, seed %llu, %s, %d "
      "threads\n",
      static_cast<long long>(per_epoch_images),
      o.epochs,
      static_cast<long long>(o.batch_size),
      static_cast<double>(o.lr),
      static_cast<double>(o.momentum),
      static_cast<unsigned long long>(o.seed),
      device.str().c_str(),
      num_threads());
  std::fflush(stdout);

  // Resuming: the model, the momentum buffers and the loader's position come from the checkpoint;
  // a checkpoint of other settings would not give the run that was asked for, so it is refused.
  std::int64_t steps_done = 0;
  std::int64_t checkpoint_every = o.checkpoint_every;
  double running_loss = 0.0;
  int first_epoch = 0;
  std::int64_t first_step = 0;
  bool resumed = false;
  if (o.resume) {
    std::error_code ec;
    if (!std::filesystem::exists(checkpoint_path, ec)) {
      std::printf("no checkpoint at %s: starting from the beginning\n", checkpoint_path.c_str());
    } else {
      const nn::TrainingState state = nn::load_checkpoint(checkpoint_path, net, optimizer);
      std::string differences;
      for (const auto& [key, value] : fixed_settings(o)) {
        const auto it = state.settings.find(key);
        const std::string saved = it == state.settings.end() ? "(none)" : it->second;
        if (saved != value) differences += " " + key + " " + saved + " (now " + value + ")";
      }
      if (!differences.empty())
        throw std::runtime_error("--resume: " + checkpoint_path +
                                 " was written with other settings:" + differences);
      if (checkpoint_every == 0 && state.settings.count("checkpoint_every"))
        checkpoint_every = std::stoll(state.settings.at("checkpoint_every"));
      loader.restore(state.loader);
      steps_done = state.steps_done;
      first_epoch = static_cast<int>(std::max<std::int64_t>(state.loader.epochs_started, 1) - 1);
      first_step = state.loader.next_batch;
      resumed = state.loader.epochs_started > 0;
      if (const auto it = state.settings.find("running_loss"); it != state.settings.end())
        running_loss = std::stod(it->second);
      std::printf("resumed from %s at epoch %d, step %lld (%lld steps done)\n",
                  checkpoint_path.c_str(),
                  first_epoch + 1,
                  static_cast<long long>(first_step),
                  static_cast<long long>(steps_done));
    }
  }
  auto save_state = [&](double loss_since_log) {
    nn::TrainingState state;
    state.loader = loader.position();
    state.steps_done = steps_done;
    state.settings = fixed_settings(o);
    state.settings["checkpoint_every"] = std::to_string(checkpoint_every);
    char loss[40];
    std::snprintf(loss, sizeof loss, "%.17g", loss_since_log);
    state.settings["running_loss"] = loss;
    nn::save_checkpoint(checkpoint_path, net, optimizer, state);
  };

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const std::int64_t steps_at_start = steps_done;
  std::int64_t images_done = 0;
  data::Batch batch;
  for (int epoch = first_epoch; epoch < o.epochs; ++epoch) {
    // A resumed epoch continues where the checkpoint left it; the others start afresh.
    const bool resumed_epoch = resumed && epoch == first_epoch;
    if (!resumed_epoch) {
      loader.start_epoch();
      running_loss = 0.0;
    }
    for (std::int64_t i = resumed_epoch ? first_step : 0; i < steps_per_epoch && loader.next(batch);
         ++i) {
      const Tensor inputs = batch.images.to(device);
      optimizer.zero_grad();
      const Tensor loss = criterion(net(inputs), batch.labels);
      const float loss_value = loss.item();
      const auto where = [&] {  // only for the error messages
        return "at epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(i + 1);
      };
      // Diverged: stop before the update, leaving --out and the last checkpoint as they were.
      if (!std::isfinite(loss_value)) {
        char lr[32];
        std::snprintf(lr, sizeof lr, "%g", static_cast<double>(o.lr));
        throw std::runtime_error("training diverged: the loss is " +
                                 std::string(std::isnan(loss_value) ? "NaN" : "infinite") + " " +
                                 where() + " (lr " + lr + "); nothing was saved to " + o.out);
      }
      loss.backward();
      if (!gradients_finite(optimizer.params())) {
        for (const nn::Parameter& p : optimizer.params()) {
          if (p.tensor.grad().defined() && first_nonfinite(p.tensor.grad()) >= 0)
            throw std::runtime_error("training diverged: the gradient of " + p.name +
                                     " is not finite " + where() + "; nothing was saved to " +
                                     o.out);
        }
      }
      optimizer.step();
      running_loss += loss_value;
      ++steps_done;
      images_done += static_cast<std::int64_t>(batch.labels.size());
      const bool log_line = (i + 1) % o.log_every == 0;
      if (log_line) {
        const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        const double rate = images_done / elapsed;
        const double left =
            elapsed / static_cast<double>(steps_done - steps_at_start) * (total_steps - steps_done);
        std::printf("[%d, %5lld] loss: %.3f   %.0f img/s, %s left\n",
                    epoch + 1,
                    static_cast<long long>(i + 1),
                    running_loss / o.log_every,
                    rate,
                    format_duration(left).c_str());
        std::fflush(stdout);
        running_loss = 0.0;
      }
      if (checkpoint_every > 0 && steps_done % checkpoint_every == 0) save_state(running_loss);
    }
    if (o.eval_each_epoch || epoch + 1 == o.epochs) {
      const EvalResult r = evaluate(net, test, 1000, device);
      std::printf("epoch %d: test accuracy %.2f %%\n", epoch + 1, r.accuracy());
      if (epoch + 1 == o.epochs) {
        const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        std::printf("Finished Training in %s (%.0f img/s)\n",
                    format_duration(elapsed).c_str(),
                    images_done / elapsed);
        print_accuracy(r);
      }
      std::fflush(stdout);
    }
  }
  // The finished run's checkpoint too, so that --resume after the end only saves the model again.
  if (checkpointing) save_state(running_loss);
  net.to(kCPU);
  nn::SafetensorsWriter writer;
  for (const auto& p : net.parameters()) writer.add(p.name, p.tensor);
  writer.save(o.out);
  std::printf("saved model to %s\n", o.out.c_str());
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  CLI::App* cmd = app.add_subcommand("train", "train the tutorial Net on CIFAR-10");
  cmd->add_option("--data", o->data_dir, "CIFAR-10 binary directory (gradlens data fetch DIR)")
      ->capture_default_str();
  cmd->add_option("--epochs", o->epochs, "passes over the training set")->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "images per SGD step")->capture_default_str();
  cmd->add_option("--lr", o->lr, "learning rate")->capture_default_str();
  cmd->add_option("--momentum", o->momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the initialisation and the shuffling")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (0 = every core)")->capture_default_str();
  cmd->add_option("--device", o->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--precision", o->precision, kPrecisionHelp)->capture_default_str();
  cmd->add_option("--out", o->out, "where to write the model (safetensors)")->capture_default_str();
  cmd->add_option("--log-every", o->log_every, "print the running loss every N mini-batches")
      ->capture_default_str();
  cmd->add_option("--limit", o->limit, "train on only N images per epoch (0 = all)")
      ->capture_default_str();
  cmd->add_flag(
      "--eval-each-epoch", o->eval_each_epoch, "print the test accuracy after every epoch");
  cmd->add_option("--checkpoint-every",
                  o->checkpoint_every,
                  "write a checkpoint every N steps (model, optimiser, data order; 0 = none)")
      ->capture_default_str();
  cmd->add_option("--checkpoint",
                  o->checkpoint,
                  "the checkpoint file (default: beside --out, NAME.checkpoint.safetensors)");
  cmd->add_flag("--resume",
                o->resume,
                "continue from --checkpoint if it exists (same seed, batch size, lr, momentum and "
                "limit); the result is bit-identical to an uninterrupted run");
  cmd->callback([o] { run_train(*o); });
}

}  // namespace gradlens::cli
