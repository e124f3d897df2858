// The Captum CIFAR-10 tutorial's Net, with PyTorch's parameter names:
// conv1 -> relu1 -> pool1 -> conv2 -> relu2 -> pool2 -> view(-1, 400) -> fc1 -> relu3 -> fc2 ->
// relu4 -> fc3 (logits). Input [N, 3, 32, 32] -> [N, 10].
#pragma once

#include <cstdint>
#include <memory>

#include "gradlens/export.h"
#include "gradlens/nn/layers.h"

namespace gradlens::nn {

class GRADLENS_API Net : public Module {
 public:
  /// Initialised as torch's Net() would be (same distributions; not the same random stream).
  explicit Net(std::uint64_t seed = 0);

  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<MaxPool2d> pool1, pool2;
  std::shared_ptr<Linear> fc1, fc2, fc3;
  std::shared_ptr<ReLU> relu1, relu2, relu3, relu4;

 protected:
  Tensor forward(const Tensor& x) override;
};

}  // namespace gradlens::nn
