#include "gradlens/nn/checkpoint.h"

#include <cmath>
#include <stdexcept>

#include "gradlens/nn/safetensors.h"

namespace gradlens::nn {

namespace {

constexpr const char* kFormat = "gradlens-training-checkpoint-1";
constexpr const char* kBufferPrefix = "optimizer.momentum_buffer.";
constexpr const char* kSettingPrefix = "setting.";

std::int64_t parse_count(const std::string& path,
                         const std::map<std::string, std::string>& metadata,
                         const std::string& key) {
  const auto it = metadata.find(key);
  if (it == metadata.end())
    throw std::runtime_error(path + ": checkpoint metadata has no '" + key + "'");
  std::size_t used = 0;
  long long value = -1;
  try {
    value = std::stoll(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != it->second.size() || value < 0)
    throw std::runtime_error(path + ": checkpoint metadata '" + key +
                             "' is not a count: " + it->second.substr(0, 40));
  return value;
}

}  // namespace

void save_checkpoint(const std::string& path,
                     const Module& model,
                     const SGD& optimizer,
                     const TrainingState& state) {
  SafetensorsWriter writer;
  for (const Parameter& p : model.parameters()) {
    const std::int64_t bad = first_nonfinite(p.tensor);
    if (bad >= 0)
      throw std::runtime_error("checkpoint " + path + " not written: parameter '" + p.name + "' " +
                               shape_str(p.tensor.shape()) + " is not finite at element " +
                               std::to_string(bad));
    writer.add(p.name, p.tensor);
  }
  for (const auto& [name, buffer] : optimizer.momentum_buffers())
    writer.add(kBufferPrefix + name, buffer);
  writer.set_metadata("format", kFormat);
  writer.set_metadata("steps_done", std::to_string(state.steps_done));
  writer.set_metadata("loader.epochs_started", std::to_string(state.loader.epochs_started));
  writer.set_metadata("loader.next_batch", std::to_string(state.loader.next_batch));
  writer.set_metadata("loader.generator", state.loader.generator);
  for (const auto& [key, value] : state.settings) writer.set_metadata(kSettingPrefix + key, value);
  writer.save(path);
}

TrainingState load_checkpoint(const std::string& path, Module& model, SGD& optimizer) {
  const SafetensorsFile file = SafetensorsFile::load(path);
  const auto& metadata = file.metadata();
  const auto format = metadata.find("format");
  if (format == metadata.end() || format->second != kFormat)
    throw std::runtime_error(path + ": not a gradlens training checkpoint (its metadata has no " +
                             "format '" + kFormat + "')");
  std::map<std::string, Tensor> parameters, buffers;
  const std::string prefix = kBufferPrefix;
  for (const std::string& name : file.names()) {
    if (file.dtype(name) != "F32")
      throw std::runtime_error(path + ": tensor '" + name + "' is " + file.dtype(name) +
                               "; a checkpoint's tensors are F32");
    if (name.rfind(prefix, 0) == 0)
      buffers.emplace(name.substr(prefix.size()), file.tensor(name));
    else
      parameters.emplace(name, file.tensor(name));
  }
  try {
    model.load_state_dict(parameters);
    optimizer.load_momentum_buffers(buffers);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  TrainingState state;
  state.steps_done = parse_count(path, metadata, "steps_done");
  state.loader.epochs_started = parse_count(path, metadata, "loader.epochs_started");
  state.loader.next_batch = parse_count(path, metadata, "loader.next_batch");
  const auto generator = metadata.find("loader.generator");
  if (generator == metadata.end())
    throw std::runtime_error(path + ": checkpoint metadata has no 'loader.generator'");
  state.loader.generator = generator->second;
  const std::string setting = kSettingPrefix;
  for (const auto& [key, value] : metadata) {
    if (key.rfind(setting, 0) == 0) state.settings.emplace(key.substr(setting.size()), value);
  }
  return state;
}

}  // namespace gradlens::nn
