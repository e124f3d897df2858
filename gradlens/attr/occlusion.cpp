// Window j's mask is an outer product of one 0/1 interval per row dim, built on the device from
// those short vectors; the number of windows covering an element is the product of its per-dim
// counts. attr = sum_j (f_t(x) - f_t(x occluded by j)) * M_j / count (attr/feature_ablation.h).
#include "gradlens/attr/occlusion.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "gradlens/attr/feature_ablation.h"
#include "gradlens/attr/registry.h"
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"

namespace gradlens::attr {

Attributions Occlusion::attribute(const Tensor& inputs,
                                  const Targets& targets,
                                  const Tensor& baselines) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() >= 2 && inputs.size(0) > 0,
                 "[occlusion] inputs must be a non-empty batch [N, ...], got ",
                 inputs.defined() ? shape_str(inputs.shape()) : std::string("an undefined tensor"));
  const Shape row(inputs.shape().begin() + 1, inputs.shape().end());
  const std::size_t rank = row.size();
  const Shape& window = options_.sliding_window_shapes;
  Shape strides = options_.strides;
  if (strides.empty()) strides.assign(rank, 1);
  if (strides.size() == 1) strides.assign(rank, strides[0]);

  bool ok = window.size() == rank && strides.size() == rank;
  for (std::size_t d = 0; ok && d < rank; ++d) {
    // Captum: the window fits the row, and a stride longer than the window (which would skip
    // elements) is allowed only where the window spans the whole dim.
    ok = window[d] >= 1 && window[d] <= row[d] && strides[d] >= 1 &&
         (window[d] == row[d] || strides[d] <= window[d]);
  }
  GRADLENS_CHECK(ok,
                 "[occlusion] sliding_window_shapes ",
                 shape_str(window),
                 " and strides ",
                 shape_str(options_.strides),
                 " do not fit input rows ",
                 shape_str(row),
                 " (inputs ",
                 shape_str(inputs.shape()),
                 "): give one window size in [1, row size] and one stride in [1, window size] per "
                 "row dim");

  // Positions per dim: ceil((size - window) / stride) + 1; the last may be clipped at the end.
  std::vector<std::int64_t> positions(rank);
  std::int64_t count = 1;
  for (std::size_t d = 0; d < rank; ++d) {
    positions[d] = (row[d] - window[d] + strides[d] - 1) / strides[d] + 1;
    count *= positions[d];
  }
  const auto interval = [&](std::size_t d, std::int64_t p, std::vector<float>& v, std::size_t at) {
    const std::int64_t begin = p * strides[d];
    const std::int64_t end = std::min(begin + window[d], row[d]);
    for (std::int64_t i = begin; i < end; ++i) v[at + static_cast<std::size_t>(i)] = 1.f;
  };
  // A [k, 1, 1, .., size_d, .., 1] tensor from k vectors of length size_d.
  const auto along = [&](std::size_t d, std::int64_t k, const std::vector<float>& v) {
    Shape s(rank + 2, 1);
    s[0] = k;
    s[d + 2] = row[d];
    return Tensor::from_vector(v, s, inputs.device());
  };

  const auto masks = [&](std::int64_t j0, std::int64_t j1) {
    const std::int64_t k = j1 - j0;
    Tensor m;
    for (std::size_t d = 0; d < rank; ++d) {
      std::vector<float> v(static_cast<std::size_t>(k * row[d]), 0.f);
      for (std::int64_t j = j0; j < j1; ++j) {
        // window number -> position along d, the first row dim fastest
        std::int64_t rest = j;
        for (std::size_t e = 0; e < d; ++e) rest /= positions[e];
        interval(d, rest % positions[d], v, static_cast<std::size_t>((j - j0) * row[d]));
      }
      const Tensor m_d = along(d, k, v);
      m = m.defined() ? mul(m, m_d) : m_d;
    }
    return m;  // [k, 1, row...]
  };
  const Tensor total = perturbation_sum(
      forward_, inputs, targets, baselines, count, options_.perturbations_per_eval, masks, name());

  // Coverage: how many windows hold each element = product of the per-dim counts [1, row...].
  NoGradGuard no_grad;
  Tensor coverage;
  for (std::size_t d = 0; d < rank; ++d) {
    std::vector<float> c(static_cast<std::size_t>(row[d]), 0.f);
    std::vector<float> one(c.size());
    for (std::int64_t p = 0; p < positions[d]; ++p) {
      std::fill(one.begin(), one.end(), 0.f);
      interval(d, p, one, 0);
      for (std::size_t i = 0; i < c.size(); ++i) c[i] += one[i];
    }
    Shape s(rank + 1, 1);
    s[d + 1] = row[d];
    const Tensor c_d = Tensor::from_vector(c, s, inputs.device());
    coverage = coverage.defined() ? mul(coverage, c_d) : c_d;
  }
  Attributions out;
  out.values = div(total, coverage);
  return out;
}

}  // namespace gradlens::attr

// Its entry in the method registry (registry.h).
namespace gradlens::attr {
namespace {

constexpr OptionSpec kOcclusionOptions[] = {{.name = "sliding_window_shapes",
                                             .type = OptionType::Shape,
                                             .default_value = "3,8,8",
                                             .help = "the occluding window, per input dimension"},
                                            {.name = "strides",
                                             .type = OptionType::Shape,
                                             .default_value = "3,4,4",
                                             .help = "the window's steps"},
                                            {.name = "perturbations_per_eval",
                                             .type = OptionType::Int,
                                             .default_value = "1",
                                             .min = 1,
                                             .max = 1000000,
                                             .help = "occluded copies per forward pass"}};

std::unique_ptr<Attribution> make_occlusion(nn::Module& model, const MethodArgs& args) {
  return std::make_unique<Occlusion>(
      model,
      OcclusionOptions{.sliding_window_shapes = args.shape("sliding_window_shapes"),
                       .strides = args.shape("strides"),
                       .perturbations_per_eval = args.integer("perturbations_per_eval")});
}

}  // namespace

extern const MethodInfo occlusion_method{.name = "occlusion",
                                         .captum_class = "Occlusion",
                                         .baselines = Baselines::PerInput,
                                         .perturbation = true,
                                         .options = kOcclusionOptions,
                                         .make = &make_occlusion};

}  // namespace gradlens::attr
