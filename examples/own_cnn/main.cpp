// A CNN of one's own, not the tutorial's: defined with the module API, trained on CIFAR-10 with
// the library's loader and SGD, then explained with NoiseTunnel (SmoothGrad over Saliency) and
// LayerGradCam on its own second convolution ("3" in Sequential's names).
//   own_cnn CIFAR_DIR OUT_DIR [STEPS]
#include <gradlens/gradlens.h>

#include <cstdio>
#include <memory>
#include <string>

using namespace gradlens;

int main(int argc, char** argv) {
  if (argc < 3) return std::fprintf(stderr, "usage: own_cnn CIFAR_DIR OUT_DIR [STEPS]\n"), 2;
  const std::string out = argv[2];
  const std::int64_t steps = argc > 3 ? std::stoll(argv[3]) : 2000;

  nn::Generator gen(1);
  nn::Sequential model{std::make_shared<nn::Conv2d>(3, 8, 3, gen, 1, 1),
                       std::make_shared<nn::ReLU>(),
                       std::make_shared<nn::MaxPool2d>(2),
                       std::make_shared<nn::Conv2d>(8, 16, 3, gen, 1, 1),
                       std::make_shared<nn::ReLU>(),
                       std::make_shared<nn::MaxPool2d>(2),
                       std::make_shared<nn::Flatten>(),
                       std::make_shared<nn::Linear>(16 * 8 * 8, 10, gen)};

  const data::CifarSplit train = data::load_cifar10(argv[1], /*train=*/true);
  data::DataLoader loader(train, 32, /*shuffle=*/true, /*seed=*/0);
  nn::SGD sgd(model.parameters(), {.lr = 0.01f, .momentum = 0.9f});
  nn::CrossEntropyLoss loss_fn;
  data::Batch batch;
  for (std::int64_t step = 0; step < steps; ++step) {
    if (!loader.next(batch)) loader.start_epoch(), loader.next(batch);
    const Tensor loss = loss_fn(model(batch.images), batch.labels);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    if ((step + 1) % 500 == 0)
      std::printf("step %lld: loss %.3f\n", (long long)step + 1, loss.item());
  }

  const data::CifarSplit test = data::load_cifar10(argv[1], /*train=*/false);
  std::vector<std::int64_t> first(1000);
  for (std::int64_t i = 0; i < 1000; ++i) first[static_cast<std::size_t>(i)] = i;
  const std::vector<std::int64_t> predicted =
      nn::predict(model, data::to_normalized_tensor(test, first));
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < 1000; ++i)
    correct += predicted[static_cast<std::size_t>(i)] == test.labels[static_cast<std::size_t>(i)];
  std::printf("accuracy on 1000 test images: %.1f %%\n", correct / 10.0);

  const Tensor image = data::to_normalized_tensor(test, std::vector<std::int64_t>{3});
  const std::int64_t label = test.labels[3];
  attr::Saliency saliency(model);
  attr::NoiseTunnel smoothgrad(saliency, {.nt_samples = 50, .stdevs = 0.2f});
  const Tensor smooth = smoothgrad.attribute(image, label).values;
  attr::LayerGradCam cam(model, "3");
  const Tensor heat = attr::interpolate(cam.attribute(image, label).values, 32, 32);
  const Tensor original = add_scalar(mul_scalar(image, 0.5f), 0.5f);
  viz::write_png(out + "/smoothgrad.png",
                 viz::visualize_image_attr(
                     smooth, original, viz::Method::BlendedHeatMap, viz::Sign::AbsoluteValue));
  viz::write_png(
      out + "/gradcam.png",
      viz::visualize_image_attr(heat, original, viz::Method::BlendedHeatMap, viz::Sign::Positive));
  std::printf("wrote %s/smoothgrad.png and %s/gradcam.png\n", out.c_str(), out.c_str());
}
