// visualize_image_attr on tensors: the same pixels as normalize_attr + render_panel over the raw
// buffers (which the reference tests check against Captum), Captum's defaults, and the errors.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "gradlens/autograd/ops.h"
#include "gradlens/viz/render.h"
#include "gradlens/viz/visualize_image_attr.h"
#include "tests/testing.h"

using namespace gradlens;
using namespace gradlens::viz;

TEST(VisualizeImageAttr, EqualsTheBufferPipelineWithCaptumsDefaults) {
  const Tensor attr = gradlens::testing::random_tensor({1, 3, 4, 5}, 11);
  const Tensor image = gradlens::testing::random_tensor({3, 4, 5}, 12);
  // Defaults: heat_map, absolute_value, outlier_perc 2, no image needed.
  const Image heat = visualize_image_attr(attr);
  const NormalizedMap map = normalize_attr(attr, Sign::AbsoluteValue, 2.0);
  RenderOptions render;
  render.method = Method::HeatMap;
  const Image expected = render_panel(map, Sign::AbsoluteValue, {}, render);
  EXPECT_EQ(heat.pixels, expected.pixels);
  EXPECT_EQ(heat.width, 5 * 8);

  // Blended over the image: the image goes through Captum's _prepare_image as HWC.
  const std::vector<float> chw = image.to_vector();
  std::vector<float> hwc(chw.size());
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 20; ++i)
      hwc[static_cast<std::size_t>(i * 3 + c)] = chw[static_cast<std::size_t>(c * 20 + i)];
  }
  VisualizeOptions options;
  options.alpha_overlay = 0.3;
  options.scale = 2;
  const Image blended =
      visualize_image_attr(attr, image, Method::BlendedHeatMap, Sign::All, 5.0, options);
  render.method = Method::BlendedHeatMap;
  render.alpha_overlay = 0.3;
  render.scale = 2;
  const Image blended_expected =
      render_panel(normalize_attr(attr, Sign::All, 5.0), Sign::All, prepare_image(hwc), render);
  EXPECT_EQ(blended.pixels, blended_expected.pixels);

  const Image row = visualize_image_attr_multiple(attr,
                                                  image,
                                                  {Method::OriginalImage, Method::HeatMap},
                                                  {Sign::All, Sign::Positive},
                                                  {"image", "positive"});
  EXPECT_GE(row.width, 2 * 5 * 8);
}

TEST(VisualizeImageAttr, ShapeErrorsNameBothShapes) {
  const Tensor attr = gradlens::testing::random_tensor({3, 4, 5}, 1);
  const std::string message = gradlens::testing::invalid_argument_message([&] {
    visualize_image_attr(
        attr, gradlens::testing::random_tensor({3, 5, 4}, 2), Method::BlendedHeatMap);
  });
  EXPECT_NE(message.find("[3, 5, 4]"), std::string::npos) << message;
  EXPECT_NE(message.find("[3, 4, 5]"), std::string::npos) << message;
  EXPECT_THROW(visualize_image_attr(attr, {}, Method::BlendedHeatMap), std::invalid_argument);
  EXPECT_THROW(visualize_image_attr_multiple(attr, {}, {Method::HeatMap}, {}),
               std::invalid_argument);
}
