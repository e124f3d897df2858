#include "gradlens/viz/visualize_image_attr.h"

#include <sstream>
#include <stdexcept>

#include "gradlens/autograd/shape.h"
#include "gradlens/viz/figure.h"
#include "gradlens/viz/render.h"

namespace gradlens::viz {
namespace {

// [C, H, W] of a [C, H, W] or [1, C, H, W] tensor, or empty.
Shape image_shape(const Tensor& t) {
  Shape shape = t.shape();
  if (shape.size() == 4 && shape[0] == 1) shape.erase(shape.begin());
  return shape.size() == 3 ? shape : Shape{};
}

// The original image as Captum's _prepare_image gives it: HWC ints 0..255; empty when undefined.
std::vector<int> prepared_image(const Tensor& attr, const Tensor& original_image) {
  if (!original_image.defined()) return {};
  const Shape shape = image_shape(original_image), attr_shape = image_shape(attr);
  if (shape.empty() || shape[0] != 3 || attr_shape.empty() || shape[1] != attr_shape[1] ||
      shape[2] != attr_shape[2]) {
    std::ostringstream s;
    s << "[visualize_image_attr] original_image must be [3, H, W] (or [1, 3, H, W]) with the "
         "attribution's H and W; got original_image "
      << shape_str(original_image.shape()) << ", attr " << shape_str(attr.shape());
    throw std::invalid_argument(s.str());
  }
  const std::vector<float> chw = original_image.to(kCPU).to_vector();
  const std::size_t plane = static_cast<std::size_t>(shape[1] * shape[2]);
  std::vector<float> hwc(chw.size());
  for (std::size_t c = 0; c < 3; ++c) {
    for (std::size_t i = 0; i < plane; ++i) hwc[i * 3 + c] = chw[c * plane + i];
  }
  return prepare_image(hwc);
}

}  // namespace

Image visualize_image_attr(const Tensor& attr,
                           const Tensor& original_image,
                           Method method,
                           Sign sign,
                           double outlier_perc,
                           const VisualizeOptions& options) {
  const std::vector<int> image = prepared_image(attr, original_image);
  const NormalizedMap map = normalize_attr(attr.to(kCPU), sign, outlier_perc, "attr");
  return render_panel(map,
                      sign,
                      image,
                      {.method = method,
                       .alpha_overlay = options.alpha_overlay,
                       .scale = options.scale,
                       .colorbar = options.show_colorbar,
                       .cmap = options.cmap});
}

Image visualize_image_attr_multiple(const Tensor& attr,
                                    const Tensor& original_image,
                                    const std::vector<Method>& methods,
                                    const std::vector<Sign>& signs,
                                    const std::vector<std::string>& titles,
                                    double outlier_perc,
                                    const VisualizeOptions& options) {
  if (methods.empty() || methods.size() != signs.size() ||
      (!titles.empty() && titles.size() != methods.size())) {
    throw std::invalid_argument(
        "[visualize_image_attr_multiple] methods and signs (and titles, when given) must have the "
        "same non-zero length; got " +
        std::to_string(methods.size()) + " methods, " + std::to_string(signs.size()) + " signs, " +
        std::to_string(titles.size()) + " titles");
  }
  std::vector<Image> panels;
  for (std::size_t i = 0; i < methods.size(); ++i) {
    panels.push_back(
        visualize_image_attr(attr, original_image, methods[i], signs[i], outlier_perc, options));
  }
  return titled_row(panels, titles, "");
}

}  // namespace gradlens::viz
