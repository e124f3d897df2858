// The pretrained tutorial Net explains one CIFAR-10 test image with IntegratedGradients and writes
// the blended heat map: explain MODEL.safetensors CIFAR_DIR OUT.png IMAGE_INDEX
#include <gradlens/gradlens.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  using namespace gradlens;
  if (argc < 5) return std::fprintf(stderr, "usage: explain MODEL CIFAR_DIR OUT.png INDEX\n"), 2;
  nn::Net net;
  net.load_state_dict(nn::SafetensorsFile::load(argv[1]).float_tensors());
  const data::CifarSplit test = data::load_cifar10(argv[2], /*train=*/false);
  const std::vector<std::int64_t> index = {std::stoll(argv[4])};
  const Tensor image = data::to_normalized_tensor(test, index);
  attr::IntegratedGradients ig(net);                                   // holds the net by reference
  const auto label = test.labels[static_cast<std::size_t>(index[0])];  // as the tutorial
  const Tensor attributions = ig.attribute(image, label).values;
  // The tutorial's original image: img / 2 + 0.5.
  const Tensor original = add_scalar(mul_scalar(image, 0.5f), 0.5f);
  const viz::Image picture = viz::visualize_image_attr(
      attributions, original, viz::Method::BlendedHeatMap, viz::Sign::All);
  viz::write_png(argv[3], picture);
  std::printf("%s: IG of test image %s for class %lld\n", argv[3], argv[4], (long long)label);
}
