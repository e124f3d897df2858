#include "gradlens/nn/layers.h"

#include "gradlens/autograd/error.h"
#include "gradlens/autograd/hooks.h"
#include "gradlens/autograd/ops.h"

namespace gradlens::nn {

Conv2d::Conv2d(std::int64_t in_channels,
               std::int64_t out_channels,
               std::int64_t kernel,
               Generator& gen,
               std::int64_t stride,
               std::int64_t padding)
    : stride(stride), padding(padding) {
  const float bound = default_init_bound(in_channels * kernel * kernel);
  weight = register_parameter(
      "weight", uniform_tensor({out_channels, in_channels, kernel, kernel}, bound, gen));
  bias = register_parameter("bias", uniform_tensor({out_channels}, bound, gen));
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, stride, padding); }

Linear::Linear(std::int64_t in_features, std::int64_t out_features, Generator& gen) {
  const float bound = default_init_bound(in_features);
  weight = register_parameter("weight", uniform_tensor({out_features, in_features}, bound, gen));
  bias = register_parameter("bias", uniform_tensor({out_features}, bound, gen));
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, kernel, stride); }

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

Tensor conv_relu(Conv2d& conv_layer, ReLU& relu_layer, const Tensor& x) {
  if (conv_layer.has_forward_hooks() || relu_layer.has_forward_hooks() || any_backward_override()) {
    return relu_layer(conv_layer(x));
  }
  return conv2d_relu(x, conv_layer.weight, conv_layer.bias, conv_layer.stride, conv_layer.padding);
}

Tensor conv_relu_pool(Conv2d& conv_layer,
                      ReLU& relu_layer,
                      MaxPool2d& pool_layer,
                      const Tensor& x) {
  const bool pool_2x2 =
      pool_layer.kernel == 2 && (pool_layer.stride == 2 || pool_layer.stride == 0);
  // Shapes are conv2d_relu_pool's to check: a conv output under 2x2 is an error either way.
  if (!pool_2x2 || pool_layer.has_forward_hooks() || conv_layer.has_forward_hooks() ||
      relu_layer.has_forward_hooks() || any_backward_override()) {
    return pool_layer(conv_relu(conv_layer, relu_layer, x));
  }
  return conv2d_relu_pool(
      x, conv_layer.weight, conv_layer.bias, conv_layer.stride, conv_layer.padding);
}

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) append(m);
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (Module* m : order_) y = (*m)(y);
  return y;
}

Tensor Flatten::forward(const Tensor& x) {
  const std::int64_t rank = x.dim();
  const std::int64_t start = start_dim_ < 0 ? start_dim_ + rank : start_dim_;
  GRADLENS_CHECK(start >= 0 && start < rank,
                 "[flatten] start_dim ",
                 start_dim_,
                 " out of range for ",
                 shape_str(x.shape()));
  Shape shape(x.shape().begin(), x.shape().begin() + start);
  std::int64_t rest = 1;
  for (std::int64_t d = start; d < rank; ++d) rest *= x.size(d);
  shape.push_back(rest);
  return reshape(x, shape);
}

}  // namespace gradlens::nn
