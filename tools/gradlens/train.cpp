// gradlens train: the tutorial's recipe (SGD lr 0.001, momentum 0.9, batch 4, 5 epochs) as a
// standalone program: progress while it runs, test accuracy at the end, the model written
// atomically.
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "gradlens/autograd/ops.h"
#include "gradlens/data/dataloader.h"
#include "gradlens/kernels/backend.h"
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
};

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
  // Where the model goes is checked before the first step, not after the last.
  {
    namespace fs = std::filesystem;
    const fs::path out(o.out);
    const fs::path dir = out.has_parent_path() ? out.parent_path() : fs::path(".");
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
      throw std::runtime_error("--out: " + o.out + ": the folder " + dir.string() +
                               " does not exist");
    if (fs::exists(out, ec) && !fs::is_regular_file(out, ec))
      throw std::runtime_error("--out: " + o.out + " exists and is not a regular file");
    if (::access(dir.c_str(), W_OK) != 0)
      throw std::runtime_error("--out: " + o.out + ": cannot write into " + dir.string() + ": " +
                               std::strerror(errno));
  }
  const Device device = Device::parse(o.device);
  apply_precision(o.precision, device);
  apply_threads(o.threads);

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

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  std::int64_t steps_done = 0, images_done = 0;
  data::Batch batch;
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    loader.start_epoch();
    double running_loss = 0.0;
    for (std::int64_t i = 0; i < steps_per_epoch && loader.next(batch); ++i) {
      const Tensor inputs = batch.images.to(device);
      optimizer.zero_grad();
      const Tensor loss = criterion(net(inputs), batch.labels);
      loss.backward();
      optimizer.step();
      const float loss_value = loss.item();
      if (!std::isfinite(loss_value)) {
        // Diverged: stop here, and leave --out as it was rather than save a NaN model.
        throw std::runtime_error("training diverged: the loss is " +
                                 std::string(std::isnan(loss_value) ? "NaN" : "infinite") +
                                 " at epoch " + std::to_string(epoch + 1) + ", step " +
                                 std::to_string(i + 1) + " (lr " + std::to_string(o.lr) +
                                 "); nothing was saved to " + o.out);
      }
      running_loss += loss_value;
      ++steps_done;
      images_done += static_cast<std::int64_t>(batch.labels.size());
      if ((i + 1) % o.log_every == 0) {
        const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        const double rate = images_done / elapsed;
        const double left = elapsed / steps_done * (total_steps - steps_done);
        std::printf("[%d, %5lld] loss: %.3f   %.0f img/s, %s left\n",
                    epoch + 1,
                    static_cast<long long>(i + 1),
                    running_loss / o.log_every,
                    rate,
                    format_duration(left).c_str());
        std::fflush(stdout);
        running_loss = 0.0;
      }
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
  cmd->add_option("--precision", o->precision, "conv2d and linear on CUDA: float32 or tf32")
      ->capture_default_str();
  cmd->add_option("--out", o->out, "where to write the model (safetensors)")->capture_default_str();
  cmd->add_option("--log-every", o->log_every, "print the running loss every N mini-batches")
      ->capture_default_str();
  cmd->add_option("--limit", o->limit, "train on only N images per epoch (0 = all)")
      ->capture_default_str();
  cmd->add_flag(
      "--eval-each-epoch", o->eval_each_epoch, "print the test accuracy after every epoch");
  cmd->callback([o] { run_train(*o); });
}

}  // namespace gradlens::cli
