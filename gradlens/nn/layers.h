// The layers the tutorial Net uses, with PyTorch's default initialisation (nn/init.h).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "gradlens/export.h"
#include "gradlens/nn/init.h"
#include "gradlens/nn/module.h"

namespace gradlens::nn {

class GRADLENS_API Conv2d : public Module {
 public:
  Conv2d(std::int64_t in_channels,
         std::int64_t out_channels,
         std::int64_t kernel,
         Generator& gen,
         std::int64_t stride = 1,
         std::int64_t padding = 0);
  Tensor weight, bias;
  std::int64_t stride, padding;

 protected:
  Tensor forward(const Tensor& x) override;  // [N, C, H, W] -> [N, K, OH, OW]
};

class GRADLENS_API Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, Generator& gen);
  Tensor weight, bias;

 protected:
  Tensor forward(const Tensor& x) override;  // [N, in] -> [N, out]
};

class GRADLENS_API MaxPool2d : public Module {
 public:
  /// PyTorch's MaxPool2d(kernel_size, stride): stride 0 means the kernel size.
  explicit MaxPool2d(std::int64_t kernel_size, std::int64_t stride_size = 0)
      : kernel(kernel_size), stride(stride_size) {}
  std::int64_t kernel, stride;

 protected:
  Tensor forward(const Tensor& x) override;
};

class GRADLENS_API ReLU : public Module {
 public:
 protected:
  Tensor forward(const Tensor& x) override;
};

/// Children run in order, named "0", "1", ... as PyTorch's nn.Sequential.
class GRADLENS_API Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  /// Appends `module` under the next index (PyTorch's append); returns it.
  template <class M>
  std::shared_ptr<M> append(std::shared_ptr<M> module) {
    order_.push_back(module.get());
    return register_module(std::to_string(order_.size() - 1), std::move(module));
  }
  std::int64_t size() const { return static_cast<std::int64_t>(order_.size()); }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  std::vector<Module*> order_;
};

/// PyTorch's nn.Flatten(start_dim = 1): [N, C, H, W] -> [N, C * H * W].
class GRADLENS_API Flatten : public Module {
 public:
  explicit Flatten(std::int64_t start_dim = 1) : start_dim_(start_dim) {}

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  std::int64_t start_dim_;
};

/// relu(conv(x)) as one fused op (autograd's conv2d_relu) when nothing can see the pre-ReLU
/// output: no forward hook on either module and no backward rule active; else the two modules.
GRADLENS_API Tensor conv_relu(Conv2d& conv_layer, ReLU& relu_layer, const Tensor& x);

/// pool(relu(conv(x))) as one fused op (autograd's conv2d_relu_pool) when the pool is 2x2 with
/// stride 2 and nothing can see the conv's or the ReLU's output: no forward hook on any of the
/// three modules and no backward rule active; else conv_relu, then the pool.
GRADLENS_API Tensor conv_relu_pool(Conv2d& conv_layer,
                                   ReLU& relu_layer,
                                   MaxPool2d& pool_layer,
                                   const Tensor& x);

}  // namespace gradlens::nn
