// NoiseTunnel (SmoothGrad, Smilkov et al. 2017; VarGrad, Adebayo et al. 2018) around any method:
// each image is repeated nt_samples times (row i * nt + s = sample s of image i, Captum's
// repeat_interleave), N(0, stdevs^2) noise is added to the inputs only, the base method runs once
// on the whole expanded batch (or once per partition of nt_samples_batch_size samples), and the
// samples are reduced: smoothgrad = E[a], smoothgrad_sq = E[a^2], vargrad = E[a^2] - E[a]^2.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "gradlens/attr/attribution.h"
#include "gradlens/attr/draws.h"
#include "gradlens/export.h"

namespace gradlens::attr {

enum class NoiseTunnelType { SmoothGrad, SmoothGradSq, VarGrad };

/// Captum's nt_type strings: "smoothgrad", "smoothgrad_sq", "vargrad".
GRADLENS_API std::string_view to_string(NoiseTunnelType type);
GRADLENS_API NoiseTunnelType parse_noise_tunnel_type(std::string_view name);

struct GRADLENS_API NoiseTunnelOptions {
  NoiseTunnelType type = NoiseTunnelType::SmoothGrad;
  int nt_samples = 5;
  int nt_samples_batch_size = 0;             // samples per base call; 0 = all at once
  float stdevs = 1.0f;                       // noise standard deviation (Captum's default)
  std::uint64_t seed = 0;                    // seed of the draws (draws.h), fixed per call
  std::vector<std::int64_t> image_ids = {};  // per input row: its stream of draws; empty = 0 .. N-1
  std::optional<RandomDraws> draws = {};     // noise / baseline_index to use instead of drawing
  bool draw_baseline_from_distrib = false;   // baselines [K, ...]: one random row per sample
};

class GRADLENS_API NoiseTunnel : public Attribution {
 public:
  using Options = NoiseTunnelOptions;
  /// The tunnel owns its base: a method given by value is moved (or copied) in, or shared. The
  /// base's own options and planner (base().batching()) apply.
  explicit NoiseTunnel(std::shared_ptr<Attribution> base, Options options = {})
      : Attribution(base->forward_fn()), base_(std::move(base)), options_(std::move(options)) {}
  template <class Method>
  requires std::derived_from<std::remove_cvref_t<Method>, Attribution>
  explicit NoiseTunnel(Method&& base, Options options = {})
      : NoiseTunnel(std::make_shared<std::remove_cvref_t<Method>>(std::forward<Method>(base)),
                    std::move(options)) {}

  std::string_view name() const override { return "noise_tunnel"; }
  /// Baselines shaped like the inputs are repeated per sample like the inputs; other baselines are
  /// passed to the base as they are, or with draw_baseline_from_distrib, [K, ...] gives each sample
  /// row a random baseline row. delta: the base's delta of every sample row, image-major
  /// (row i * nt + s; K deltas per row for a base that reports K per row).
  Attributions attribute(const Tensor& inputs,
                         const Targets& targets,
                         const Tensor& baselines = {}) override;
  bool has_convergence_delta() const override { return base_->has_convergence_delta(); }

  Attribution& base() { return *base_; }
  Options& options() { return options_; }
  void set_image_ids(std::vector<std::int64_t> ids) override {
    options_.image_ids = std::move(ids);
  }

 private:
  // The work of attribute() for images whose draws come from `streams` (one per image).
  Attributions attribute_images(const Tensor& inputs,
                                std::span<const std::int64_t> t,
                                const Tensor& baselines,
                                std::span<const std::int64_t> streams,
                                std::int64_t per_call);
  std::int64_t samples_per_call() const;  // nt_samples_batch_size, 0 meaning all

  std::shared_ptr<Attribution> base_;
  Options options_;
};

/// torch.repeat_interleave(samples, dim 0): row i * samples + s of the result is row i of x.
GRADLENS_API Tensor repeat_interleave(const Tensor& x, std::int64_t samples);
GRADLENS_API std::vector<std::int64_t> repeat_interleave(std::span<const std::int64_t> values,
                                                         std::int64_t samples);

}  // namespace gradlens::attr
