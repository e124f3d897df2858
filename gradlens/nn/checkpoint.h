// Training checkpoints: what a run needs to continue exactly where it stopped (the model, SGD's
// momentum buffers, the data loader's position and generator, the run's settings), in one
// safetensors file written atomically, so a run killed at any moment resumes from its last one.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "gradlens/data/dataloader.h"
#include "gradlens/export.h"
#include "gradlens/nn/module.h"
#include "gradlens/nn/optim/sgd.h"

namespace gradlens::nn {

struct GRADLENS_API TrainingState {
  data::LoaderPosition loader;
  std::int64_t steps_done = 0;                  // optimiser steps taken
  std::map<std::string, std::string> settings;  // the run's settings, for the caller to compare
};

/// Writes the model's parameters (PyTorch's names), the optimiser's momentum buffers
/// ("optimizer.momentum_buffer.<name>") and `state` (the file's metadata) to `path`, atomically.
/// A parameter holding a NaN or an infinity is refused by name: a checkpoint is always a good one.
GRADLENS_API void save_checkpoint(const std::string& path,
                                  const Module& model,
                                  const SGD& optimizer,
                                  const TrainingState& state);

/// Loads a checkpoint of save_checkpoint into `model` and `optimizer` and returns its state; a
/// file that is not one, or a missing, extra or mis-shaped tensor, throws std::runtime_error
/// naming the file.
GRADLENS_API TrainingState load_checkpoint(const std::string& path, Module& model, SGD& optimizer);

}  // namespace gradlens::nn
