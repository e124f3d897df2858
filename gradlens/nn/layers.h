// The layers the tutorial Net uses, with PyTorch's default initialisation (nn/init.h).
#pragma once

#include <cstdint>

#include "gradlens/nn/init.h"
#include "gradlens/nn/module.h"

namespace gradlens::nn {

class Conv2d : public Module {
 public:
  Conv2d(std::int64_t in_channels,
         std::int64_t out_channels,
         std::int64_t kernel,
         Generator& gen,
         std::int64_t stride = 1,
         std::int64_t padding = 0);
  Tensor forward(const Tensor& x) override;  // [N, C, H, W] -> [N, K, OH, OW]
  Tensor weight, bias;
  std::int64_t stride, padding;
};

class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, Generator& gen);
  Tensor forward(const Tensor& x) override;  // [N, in] -> [N, out]
  Tensor weight, bias;
};

class MaxPool2d : public Module {
 public:
  /// PyTorch's MaxPool2d(kernel_size, stride): stride 0 means the kernel size.
  explicit MaxPool2d(std::int64_t kernel_size, std::int64_t stride_size = 0)
      : kernel(kernel_size), stride(stride_size) {}
  Tensor forward(const Tensor& x) override;
  std::int64_t kernel, stride;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

/// relu(conv(x)) as one fused op (autograd's conv2d_relu) when nothing can see the pre-ReLU
/// output: no forward hook on either module and no backward rule active; else the two modules.
Tensor conv_relu(Conv2d& conv_layer, ReLU& relu_layer, const Tensor& x);

}  // namespace gradlens::nn
