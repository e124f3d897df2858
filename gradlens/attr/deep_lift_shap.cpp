// DeepLiftShap_i = mean_j DeepLift(x_i; baseline b_j), all N * K pairs in one DeepLift call.
#include "gradlens/attr/deep_lift_shap.h"

#include <algorithm>
#include <memory>

#include "gradlens/attr/registry.h"
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"

namespace gradlens::attr {

Attributions DeepLiftShap::attribute(const Tensor& inputs,
                                     const Targets& targets,
                                     const Tensor& baselines) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) > 0,
                 "[deeplift_shap] inputs must be a non-empty batch");
  GRADLENS_CHECK(
      baselines.defined() && baselines.dim() == inputs.dim() && baselines.size(0) > 1 &&
          std::equal(
              baselines.shape().begin() + 1, baselines.shape().end(), inputs.shape().begin() + 1),
      "[deeplift_shap] baselines must be a distribution [K, ...] with K > 1 rows "
      "shaped like the inputs' rows; got baselines ",
      baselines.defined() ? shape_str(baselines.shape()) : std::string("undefined"),
      " for inputs ",
      shape_str(inputs.shape()),
      " (for a single baseline, use DeepLift)");
  NoGradGuard no_grad;
  const std::int64_t n = inputs.size(0), k = baselines.size(0);
  const auto t = expand_targets(targets, n);
  std::vector<std::int64_t> input_rows, baseline_rows, pair_targets;
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < k; ++j) {
      input_rows.push_back(i);
      baseline_rows.push_back(j);
      pair_targets.push_back(t[static_cast<std::size_t>(i)]);
    }
  }
  Attributions pairs = DeepLift::attribute(
      index_rows(inputs, input_rows), pair_targets, index_rows(baselines, baseline_rows));
  Shape grouped = inputs.shape();
  grouped.insert(grouped.begin() + 1, k);  // [N, K, ...]
  Attributions out;
  out.values = mean_dim(reshape(pairs.values, grouped), 1);
  out.delta = std::move(pairs.delta);
  return out;
}

}  // namespace gradlens::attr

// Its entry in the method registry (registry.h): DeepLift's options.
namespace gradlens::attr {

extern const MethodInfo deeplift_method;

namespace {

std::unique_ptr<Attribution> make_deeplift_shap(nn::Module& model, const MethodArgs& args) {
  return std::make_unique<DeepLiftShap>(
      model,
      DeepLiftOptions{.multiply_by_inputs = args.flag("multiply_by_inputs"),
                      .eps = static_cast<float>(args.number("eps"))});
}

}  // namespace

extern const MethodInfo deeplift_shap_method{.name = "deeplift_shap",
                                             .captum_class = "DeepLiftShap",
                                             .baselines = Baselines::Distribution,
                                             .has_delta = true,
                                             .options = deeplift_method.options,
                                             .make = &make_deeplift_shap};

}  // namespace gradlens::attr
