#include "gradlens/attr/attribution.h"

#include <cmath>
#include <string>

#include "gradlens/autograd/error.h"
#include "gradlens/autograd/ops.h"

namespace gradlens::attr {

Targets::Targets(const Tensor& targets) {
  GRADLENS_CHECK(
      targets.defined() && targets.dim() <= 1,
      "[attribute] targets as a tensor must be a scalar or a vector of class indices, "
      "got ",
      targets.defined() ? shape_str(targets.shape()) : std::string("an undefined tensor"));
  for (const float v : targets.to_vector()) {
    GRADLENS_CHECK(std::isfinite(v) && v == std::floor(v) && std::abs(v) < 9.0e15f,
                   "[attribute] target ",
                   v,
                   " is not a class index");
    values_.push_back(static_cast<std::int64_t>(v));
  }
}

std::vector<std::int64_t> expand_targets(std::span<const std::int64_t> targets, std::int64_t rows) {
  GRADLENS_CHECK(targets.size() == 1 || static_cast<std::int64_t>(targets.size()) == rows,
                 "[attribute] ",
                 targets.size(),
                 " targets for ",
                 rows,
                 " inputs (give one target per input, or one for all)");
  if (targets.size() == 1)
    return std::vector<std::int64_t>(static_cast<std::size_t>(rows), targets[0]);
  return {targets.begin(), targets.end()};
}

Tensor expand_baselines(const Tensor& baselines, const Tensor& inputs, std::string_view method) {
  if (!baselines.defined()) return Tensor::zeros(inputs.shape(), inputs.device());
  if (baselines.shape() == inputs.shape()) return baselines;
  Shape row = inputs.shape();
  row[0] = 1;
  GRADLENS_CHECK(baselines.shape() == row,
                 "[",
                 method,
                 "] baselines ",
                 shape_str(baselines.shape()),
                 " do not fit inputs ",
                 shape_str(inputs.shape()),
                 " (expected the inputs' shape or ",
                 shape_str(row),
                 ")");
  const std::vector<std::int64_t> zeros(static_cast<std::size_t>(inputs.size(0)), 0);
  return index_rows(baselines, zeros);
}

}  // namespace gradlens::attr
