// attr(x)[e] = f_t(x) - f_t(x with every element of feature(e) replaced by the baseline). The
// perturbed batches are x * (1 - M) + b * M with broadcast masks M [k, 1, row...], built on the
// device; feature k's mask is (F == id_k), F the id mask re-numbered 0..K-1 in ascending id order.
#include "gradlens/attr/feature_ablation.h"

#include <algorithm>
#include <map>
#include <memory>

#include "gradlens/attr/gradient.h"
#include "gradlens/attr/registry.h"
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"

namespace gradlens::attr {

namespace {

// Baselines that broadcast against the inputs [N, row...]: a scalar [], [1, row...] or [N, row...]
// (undefined: a zero scalar).
Tensor checked_baselines(const Tensor& baselines, const Tensor& inputs, std::string_view method) {
  if (!baselines.defined()) return Tensor::scalar(0.f, inputs.device());
  Shape one_row = inputs.shape();
  one_row[0] = 1;
  GRADLENS_CHECK(
      baselines.dim() == 0 || baselines.shape() == inputs.shape() || baselines.shape() == one_row,
      "[",
      method,
      "] baselines ",
      shape_str(baselines.shape()),
      " do not fit inputs ",
      shape_str(inputs.shape()),
      " (expected a scalar [], ",
      shape_str(one_row),
      " or ",
      shape_str(inputs.shape()),
      ")");
  GRADLENS_CHECK(baselines.device() == inputs.device(),
                 "[",
                 method,
                 "] baselines on ",
                 baselines.device().str(),
                 ", inputs on ",
                 inputs.device().str());
  return baselines;
}

// The mask shape with leading 1s beyond the row's rank dropped, checked to broadcast against row.
Shape row_mask_shape(const FeatureAblationOptions& o, const Shape& row, const Shape& inputs) {
  Shape shape = o.mask_shape.empty() ? row : o.mask_shape;
  const auto numel = static_cast<std::size_t>(shape_numel(shape));
  GRADLENS_CHECK(numel == o.feature_mask.size(),
                 "[feature_ablation] feature_mask has ",
                 o.feature_mask.size(),
                 " ids but mask_shape ",
                 shape_str(shape),
                 " holds ",
                 numel,
                 " (inputs ",
                 shape_str(inputs),
                 ")");
  while (shape.size() > row.size() && shape.front() == 1) shape.erase(shape.begin());
  bool fits = shape.size() <= row.size();
  for (std::size_t d = 0; fits && d < shape.size(); ++d) {
    const std::int64_t r = row[row.size() - shape.size() + d];
    fits = shape[d] == r || shape[d] == 1;
  }
  GRADLENS_CHECK(fits,
                 "[feature_ablation] mask_shape ",
                 shape_str(o.mask_shape),
                 " does not broadcast against an input row ",
                 shape_str(row),
                 " (inputs ",
                 shape_str(inputs),
                 ")");
  return shape;
}

}  // namespace

Tensor perturbation_sum(const ForwardFn& forward,
                        const Tensor& inputs,
                        std::span<const std::int64_t> targets,
                        const Tensor& baselines,
                        std::int64_t count,
                        std::int64_t per_eval,
                        const PerturbationMasks& masks,
                        std::string_view method) {
  GRADLENS_CHECK(
      per_eval >= 1, "[", method, "] perturbations_per_eval must be >= 1, got ", per_eval);
  NoGradGuard no_grad;
  const std::int64_t n = inputs.size(0);
  const auto t = expand_targets(targets, n);
  const Tensor base = checked_baselines(baselines, inputs, method);
  const Tensor initial = target_outputs(forward, inputs, t);  // [N]
  Shape batch_shape = inputs.shape();                         // [k * N, row...] per chunk
  Shape diff_shape(inputs.shape().size(), 1);                 // [N, 1, ...]
  diff_shape[0] = n;

  Tensor total = Tensor::zeros(inputs.shape(), inputs.device());
  std::vector<std::int64_t> chunk_targets;
  for_each_chunk(count, per_eval, [&](std::int64_t j0, std::int64_t j1) {
    const std::int64_t k = j1 - j0;
    const Tensor m = masks(j0, j1);  // [k, 1, row...]
    // [N, row...] against [k, 1, row...] -> [k, N, row...]: k perturbed copies of the batch
    const Tensor perturbed = add(mul(inputs, affine(m, -1.f, 1.f)), mul(base, m));
    batch_shape[0] = k * n;
    chunk_targets.clear();
    for (std::int64_t j = 0; j < k; ++j)
      chunk_targets.insert(chunk_targets.end(), t.begin(), t.end());
    const Tensor out = target_outputs(forward, reshape(perturbed, batch_shape), chunk_targets);
    const Tensor diff = sub(initial, reshape(out, {k, n}));  // [k, N]
    Shape mask_row(m.shape().begin() + 1, m.shape().end());  // [1, row...]
    for (std::int64_t j = 0; j < k; ++j) {
      const Tensor d = reshape(slice(diff, j, j + 1), diff_shape);
      total = add(total, mul(d, reshape(slice(m, j, j + 1), mask_row)));
    }
  });
  return total;
}

Attributions FeatureAblation::attribute(const Tensor& inputs,
                                        const Targets& targets,
                                        const Tensor& baselines) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() >= 2 && inputs.size(0) > 0,
                 "[feature_ablation] inputs must be a non-empty batch [N, ...], got ",
                 inputs.defined() ? shape_str(inputs.shape()) : std::string("an undefined tensor"));
  const Shape row(inputs.shape().begin() + 1, inputs.shape().end());
  Shape shape;
  std::vector<std::int64_t> ids;
  if (options_.feature_mask.empty()) {
    GRADLENS_CHECK(options_.mask_shape.empty(),
                   "[feature_ablation] mask_shape ",
                   shape_str(options_.mask_shape),
                   " given without a feature_mask");
    shape = row;
    ids.resize(static_cast<std::size_t>(shape_numel(row)));
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i);
  } else {
    shape = row_mask_shape(options_, row, inputs.shape());
    ids = options_.feature_mask;
  }
  // Features in ascending id order (torch.unique), re-numbered 0..K-1: exact in float32.
  std::vector<std::int64_t> unique = ids;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  std::vector<float> numbered(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i)
    numbered[i] =
        static_cast<float>(std::lower_bound(unique.begin(), unique.end(), ids[i]) - unique.begin());
  // [1, 1, row'...]: the mask padded with leading 1s to the row's rank, under [k, 1]
  Shape f_shape(row.size() - shape.size() + 2, 1);
  f_shape.insert(f_shape.end(), shape.begin(), shape.end());
  const Tensor f = Tensor::from_vector(numbered, f_shape, inputs.device());

  const auto masks = [&](std::int64_t j0, std::int64_t j1) {
    std::vector<float> which;
    for (std::int64_t j = j0; j < j1; ++j) which.push_back(static_cast<float>(j));
    Shape k_shape(f_shape.size(), 1);
    k_shape[0] = j1 - j0;
    const Tensor id = Tensor::from_vector(which, k_shape, inputs.device());  // [k, 1, 1, ...]
    // (F == id) as step(0.5 - |F - id|): both hold small integers, so this is exact
    return step(affine(abs(sub(f, id)), -1.f, 0.5f));  // [k, 1, row'...]
  };
  Attributions out;
  out.values = perturbation_sum(forward_,
                                inputs,
                                targets,
                                baselines,
                                static_cast<std::int64_t>(unique.size()),
                                options_.perturbations_per_eval,
                                masks,
                                name());
  return out;
}

}  // namespace gradlens::attr

// Its entry in the method registry (registry.h).
namespace gradlens::attr {
namespace {

constexpr OptionSpec kFeatureAblationOptions[] = {{.name = "perturbations_per_eval",
                                                   .type = OptionType::Int,
                                                   .default_value = "1",
                                                   .min = 1,
                                                   .max = 1000000,
                                                   .help = "ablated copies per forward pass"}};

std::unique_ptr<Attribution> make_feature_ablation(nn::Module& model, const MethodArgs& args) {
  return std::make_unique<FeatureAblation>(
      model,
      FeatureAblationOptions{.feature_mask = args.feature_mask,
                             .mask_shape = args.mask_shape,
                             .perturbations_per_eval = args.integer("perturbations_per_eval")});
}

}  // namespace

extern const MethodInfo feature_ablation_method{.name = "feature_ablation",
                                                .captum_class = "FeatureAblation",
                                                .baselines = Baselines::PerInput,
                                                .perturbation = true,
                                                .options = kFeatureAblationOptions,
                                                .make = &make_feature_ablation};

}  // namespace gradlens::attr
