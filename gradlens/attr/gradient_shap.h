// GradientShap (Lundberg & Lee 2017, expected gradients): Captum's NoiseTunnel(smoothgrad,
// draw_baseline_from_distrib) around InputBaselineXGradient, as one batched method. Per sample row
// r = i * n + s: xn = x_i + noise_r, b = baselines[index_r], alpha_r ~ U(0, 1),
// attr_r = (xn - b) * grad f_t(alpha_r * xn + (1 - alpha_r) * b); result_i = mean_s attr_{i*n+s}.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "gradlens/attr/attribution.h"
#include "gradlens/attr/draws.h"
#include "gradlens/export.h"

namespace gradlens::attr {

struct GRADLENS_API GradientShapOptions {
  int n_samples = 5;
  float stdevs = 0.f;  // noise added to the inputs (Captum's default: none)
  bool multiply_by_inputs = true;
  std::uint64_t seed = 0;                    // seed of the draws (draws.h), fixed per call
  std::vector<std::int64_t> image_ids = {};  // per input row: its stream of draws; empty = 0 .. N-1
  std::optional<RandomDraws> draws =
      {};  // baseline_index / noise / alphas to use instead of drawing
  // Per-sample completeness gaps cost two more forward passes over N * n_samples rows; Captum
  // computes them only when asked (return_convergence_delta), and so do we.
  bool return_convergence_delta = false;
};

class GRADLENS_API GradientShap : public Attribution {
 public:
  using Options = GradientShapOptions;
  explicit GradientShap(ForwardFn forward, Options options = {})
      : Attribution(std::move(forward)), options_(options) {}

  std::string_view name() const override { return "gradient_shap"; }
  /// baselines: the reference distribution [K, ...] (required). Draws, when not handed in, come
  /// from each image's streams (draws.h): baseline rows, noise (only when stdevs > 0), alphas.
  /// delta [N * n_samples]: per sample row, sum(attr_r) - (f_t(xn_r) - f_t(b_r)).
  Attributions attribute(const Tensor& inputs,
                         const Targets& targets,
                         const Tensor& baselines) override;
  bool has_convergence_delta() const override { return options_.return_convergence_delta; }
  Options& options() { return options_; }
  void set_image_ids(std::vector<std::int64_t> ids) override {
    options_.image_ids = std::move(ids);
  }

 private:
  Options options_;
};

}  // namespace gradlens::attr
