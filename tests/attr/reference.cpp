#include "tests/attr/reference.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace gradlens::testing {

std::unique_ptr<PublicSet> load_public_set() {
  const std::string weights = shared_path("reference/cifar_net.safetensors");
  const std::string attributions = shared_path("reference/public_attributions.safetensors");
  const std::string stochastic = shared_path("reference/public_stochastic.safetensors");
  const std::string inputs = shared_path("reference/public_inputs.safetensors");
  if (weights.empty() || attributions.empty() || stochastic.empty() || inputs.empty())
    return nullptr;
  auto set = std::make_unique<PublicSet>(PublicSet{std::make_shared<nn::Net>(),
                                                   {},
                                                   {},
                                                   {},
                                                   nn::SafetensorsFile::load(attributions),
                                                   nn::SafetensorsFile::load(stochastic),
                                                   nn::SafetensorsFile::load(inputs)});
  set->net->load_state_dict(nn::SafetensorsFile::load(weights).float_tensors());
  set->forward = [net = set->net](const Tensor& x) { return (*net)(x); };
  set->inputs = set->inputs_file.tensor("inputs");
  set->labels = set->inputs_file.int64s("labels");
  return set;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector(), y = b.to_vector();
  double worst = 0;
  for (std::size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(x[i]) - y[i]));
  }
  return worst;
}

void report_difference(const char* what, const Tensor& actual, const Tensor& expected) {
  std::printf(
      "[   stat   ] %s: max|diff| vs reference %.3g\n", what, max_abs_diff(actual, expected));
}

::testing::AssertionResult matches_reference(const char* what,
                                             const Tensor& actual,
                                             const Tensor& expected,
                                             double atol) {
  report_difference(what, actual, expected);
  return allclose(actual, expected, 0, atol);
}

}  // namespace gradlens::testing
