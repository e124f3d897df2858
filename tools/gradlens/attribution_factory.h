// Builds any attribution method by its Captum name from one flat set of options, so that
// `gradlens attribute` and bench/bench_attr.cpp construct exactly the same objects. Also the small
// parsers the command line needs (shapes "3,8,8", byte sizes "512M", index ranges "0:16").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gradlens/attr/attribution.h"
#include "gradlens/attr/draws.h"
#include "gradlens/autograd/shape.h"
#include "gradlens/nn/module.h"

namespace gradlens::cli {

/// Every option of every method, with Captum's defaults; each method reads the ones it has.
struct MethodConfig {
  std::string method;  // "integrated_gradients", ... (attr::methods())

  // Batching of the gradient calls (every method).
  std::int64_t internal_batch_size = 0;  // rows per gradient call; 0 = from the memory budget
  std::size_t memory_budget = 0;         // bytes; 0 = half the free memory

  // Gradient methods.
  bool abs = true;   // saliency
  int n_steps = 50;  // integrated_gradients
  std::string approximation = "gausslegendre";
  bool multiply_by_inputs = true;  // integrated_gradients, deeplift(_shap), gradient_shap
  bool delta = true;               // integrated_gradients, gradient_shap: convergence deltas
  int n_samples = 5;               // gradient_shap
  float gs_stdevs = 0.f;           // gradient_shap's own noise
  float deeplift_eps = 1e-10f;
  float lrp_epsilon = 1e-9f;

  // Layer methods.
  std::string layer = "conv2";
  bool relu_attributions = false;
  bool attribute_to_layer_input = false;
  std::string interpolate;  // guided_grad_cam's mode ("" = nearest); layer_grad_cam: upsample

  // Perturbation methods.
  Shape sliding_window_shapes{3, 8, 8};
  Shape strides{3, 4, 4};
  std::int64_t perturbations_per_eval = 1;
  std::vector<std::int64_t> feature_mask;  // feature_ablation; empty = every scalar
  Shape mask_shape;

  // Sampling methods: a seed, or draws handed in whole.
  std::uint64_t seed = 0;
  attr::RandomDraws draws;

  // NoiseTunnel around the method: "" (none), "smoothgrad", "smoothgrad_sq" or "vargrad".
  std::string noise_tunnel;
  int nt_samples = 5;
  std::int64_t nt_samples_batch_size = 0;  // 0 = all samples in one call
  float stdevs = 1.f;
};

/// The method names the factory knows, in the order the help text lists them.

/// An attribution method, wrapped in a NoiseTunnel when asked; owns both.
class BuiltMethod {
 public:
  BuiltMethod(std::shared_ptr<attr::Attribution> base,
              std::unique_ptr<attr::Attribution> tunnel,
              std::string description);

  /// What to call attribute() on: the NoiseTunnel when there is one, else the method.
  attr::Attribution& get() { return tunnel_ ? *tunnel_ : *base_; }
  attr::Attribution& base() { return *base_; }
  /// The data-set index of each input row of the next attribute() call: the random streams of the
  /// sampling methods (NoiseTunnel, GradientShap), so an image's draws do not depend on its batch.
  void set_image_ids(const std::vector<std::int64_t>& ids);
  /// "integrated_gradients(n_steps=50, method=gausslegendre, ...)" for the log.
  const std::string& description() const { return description_; }

 private:
  std::shared_ptr<attr::Attribution> base_;  // shared with the tunnel, when there is one
  std::unique_ptr<attr::Attribution> tunnel_;
  std::string description_;
};

/// Builds config.method on `model` (which must outlive the result). Unknown names, layers and
/// out-of-range parameters are std::invalid_argument naming the flag.
BuiltMethod make_attribution(const MethodConfig& config, nn::Module& model);

/// Upsamples layer maps [N, C, h, w] to height x width when the config asks for it
/// (layer_grad_cam with interpolate set); otherwise returns them unchanged.
Tensor postprocess(const MethodConfig& config,
                   const Tensor& values,
                   std::int64_t height,
                   std::int64_t width);

/// "3,8,8" -> {3, 8, 8}; every entry >= 1.
Shape parse_shape(const std::string& text, const std::string& flag);
/// "512M", "2G", "64KiB", "1048576" -> bytes (K/M/G/T are powers of 1024).
std::size_t parse_bytes(const std::string& text, const std::string& flag);
/// "0:16", "3", "0,3,5", "0:4,9" or "all" -> indices, each in [0, limit).
std::vector<std::int64_t> parse_indices(const std::string& text,
                                        std::int64_t limit,
                                        const std::string& flag);

}  // namespace gradlens::cli
