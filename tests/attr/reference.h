// The PUBLIC reference set (../shared/reference): the pretrained Net, the 16 test images, their
// labels (the attribution targets), and the reference tensors, plus tolerance checks per image.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gradlens/attr/attribution.h"
#include "gradlens/nn/lenet.h"
#include "gradlens/nn/safetensors.h"
#include "tests/testing.h"

namespace gradlens::testing {

struct PublicSet {
  std::shared_ptr<nn::Net> net;
  attr::ForwardFn forward;
  Tensor inputs;  // [16, 3, 32, 32]
  std::vector<std::int64_t> labels;
  nn::SafetensorsFile attributions, stochastic, inputs_file;
};

/// Loads everything, or returns null when ../shared/reference is missing (caller skips / fails).
std::unique_ptr<PublicSet> load_public_set();

/// Largest |a - b| over all elements.
double max_abs_diff(const Tensor& a, const Tensor& b);
/// Prints "[   stat   ] what: max|diff| vs reference ..." (the figure quoted in closing notes).
void report_difference(const char* what, const Tensor& actual, const Tensor& expected);
/// report_difference, then every element within atol of the reference.
::testing::AssertionResult matches_reference(const char* what,
                                             const Tensor& actual,
                                             const Tensor& expected,
                                             double atol);

}  // namespace gradlens::testing

#define GRADLENS_PUBLIC_SET(var)                                                  \
  GRADLENS_SHARED_FILE(var##_path_, "reference/public_attributions.safetensors"); \
  auto var = ::gradlens::testing::load_public_set();                              \
  ASSERT_TRUE(var != nullptr)
