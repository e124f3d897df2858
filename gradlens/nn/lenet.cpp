#include "gradlens/nn/lenet.h"

#include "gradlens/autograd/error.h"
#include "gradlens/autograd/ops.h"

namespace gradlens::nn {

Net::Net(std::uint64_t seed) {
  Generator gen(seed);
  // Registration order = PyTorch's attribute order, so parameters() and state_dict() line up.
  conv1 = register_module("conv1", std::make_shared<Conv2d>(3, 6, 5, gen));
  pool1 = register_module("pool1", std::make_shared<MaxPool2d>(2, 2));
  conv2 = register_module("conv2", std::make_shared<Conv2d>(6, 16, 5, gen));
  pool2 = register_module("pool2", std::make_shared<MaxPool2d>(2, 2));
  fc1 = register_module("fc1", std::make_shared<Linear>(16 * 5 * 5, 120, gen));
  fc2 = register_module("fc2", std::make_shared<Linear>(120, 84, gen));
  fc3 = register_module("fc3", std::make_shared<Linear>(84, 10, gen));
  relu1 = register_module("relu1", std::make_shared<ReLU>());
  relu2 = register_module("relu2", std::make_shared<ReLU>());
  relu3 = register_module("relu3", std::make_shared<ReLU>());
  relu4 = register_module("relu4", std::make_shared<ReLU>());
}

Tensor Net::forward(const Tensor& input) {
  GRADLENS_CHECK(input.defined() && input.dim() == 4 && input.size(1) == 3 && input.size(2) == 32 &&
                     input.size(3) == 32,
                 "[Net] expects images [N, 3, 32, 32], got ",
                 input.defined() ? shape_str(input.shape()) : std::string("an undefined tensor"));
  Tensor x = conv_relu_pool(*conv1, *relu1, *pool1, input);
  x = conv_relu_pool(*conv2, *relu2, *pool2, x);
  x = view(x, {-1, 16 * 5 * 5});
  x = (*relu3)((*fc1)(x));
  x = (*relu4)((*fc2)(x));
  return (*fc3)(x);
}

}  // namespace gradlens::nn
