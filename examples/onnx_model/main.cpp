// Your own CNN, exported by torch.onnx.export, explained with no Python: the model's accuracy on
// the first N CIFAR-10 test images, then IntegratedGradients and LayerGradCam on its last Conv for
// test image 0, as two heat maps: onnx_model MODEL.onnx CIFAR_DIR OUT_DIR N
#include <gradlens/gradlens.h>
#include <gradlens/onnx/model.h>

#include <cstdio>
#include <numeric>
#include <string>

int main(int argc, char** argv) {
  using namespace gradlens;
  if (argc < 5) return std::fprintf(stderr, "usage: onnx_model MODEL.onnx CIFAR_DIR OUT N\n"), 2;
  const auto model = onnx::OnnxModel::load(argv[1]);  // PyTorch's module names: "layer2.conv1"
  const data::CifarSplit test = data::load_cifar10(argv[2], /*train=*/false);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(std::stoll(argv[4])));
  std::iota(ids.begin(), ids.end(), 0);
  const Tensor images = data::to_normalized_tensor(test, ids);
  std::vector<std::int64_t> predicted;
  {
    NoGradGuard no_grad;
    predicted = argmax_rows((*model)(images));
  }
  std::int64_t right = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) right += predicted[i] == test.labels[i];
  std::printf("%s: %lld of %zu test images right\n", argv[1], (long long)right, ids.size());

  std::string last_conv;  // GradCAM's usual layer
  for (const onnx::NodeInfo& node : model->nodes())
    if (node.op_type == "Conv") last_conv = node.module_path;
  const Tensor image = slice(images, 0, 1);
  const std::int64_t label = test.labels[0];
  const Tensor original =
      add_scalar(mul_scalar(image, 0.5f), 0.5f);  // the tutorial's img / 2 + 0.5
  attr::IntegratedGradients ig(*model);
  viz::write_png(std::string(argv[3]) + "/ig.png",
                 viz::visualize_image_attr(ig.attribute(image, label).values,
                                           original,
                                           viz::Method::BlendedHeatMap,
                                           viz::Sign::All));
  attr::LayerGradCam gradcam(*model, last_conv);
  const Tensor cam = attr::interpolate(gradcam.attribute(image, label).values, 32, 32);
  viz::write_png(
      std::string(argv[3]) + "/gradcam.png",
      viz::visualize_image_attr(cam, original, viz::Method::BlendedHeatMap, viz::Sign::Positive));
  std::printf("wrote ig.png and gradcam.png (LayerGradCam on %s) for test image 0\n",
              last_conv.c_str());
}
