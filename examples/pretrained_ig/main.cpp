// The pretrained tutorial Net explains one CIFAR-10 test image with IntegratedGradients and writes
// the blended heat map: explain MODEL.safetensors CIFAR_DIR OUT.png [IMAGE_INDEX]
#include <gradlens/gradlens.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  using namespace gradlens;
  if (argc < 4)
    return std::fprintf(stderr, "usage: %s MODEL CIFAR_DIR OUT.png [INDEX]\n", argv[0]), 2;
  nn::Net net;
  net.load_state_dict(nn::SafetensorsFile::load(argv[1]).float_tensors());
  const std::int64_t index = argc > 4 ? std::stoll(argv[4]) : 3;
  const data::CifarSplit test = data::load_cifar10(argv[2], /*train=*/false);
  const Tensor image = data::to_normalized_tensor(test, {{index}});
  const std::int64_t label = test.labels[static_cast<std::size_t>(index)];
  attr::IntegratedGradients ig([&net](const Tensor& x) { return net(x); });
  const Tensor attributions = ig.attribute(image, {{label}}).values;
  const Tensor original =
      add_scalar(mul_scalar(image, 0.5f), 0.5f);  // the tutorial's img / 2 + 0.5
  viz::write_png(argv[3],
                 viz::visualize_image_attr(
                     attributions, original, viz::Method::BlendedHeatMap, viz::Sign::All));
  std::printf("wrote %s: integrated gradients of test image %lld (class %lld)\n",
              argv[3],
              static_cast<long long>(index),
              static_cast<long long>(label));
}
