// viz/grid, viz/font and viz/figure: make_grid's layout against torchvision's formula (sizes,
// padding, placement, pad value, the single-image and one-channel cases), the labelled grid PNG,
// the bitmap font and the titled figure row.
#include <gtest/gtest.h>

#include <limits>
#include <set>
#include <string>
#include <vector>

#include "gradlens/viz/figure.h"
#include "gradlens/viz/font.h"
#include "gradlens/viz/grid.h"
#include "tests/testing.h"

namespace gradlens::viz {
namespace {

// torchvision.utils.make_grid written out as its source reads, element by element, to compare with.
std::vector<float> make_grid_formula(const std::vector<float>& x,
                                     int n,
                                     int c,
                                     int h,
                                     int w,
                                     int nrow,
                                     int padding,
                                     float pad_value,
                                     int& out_h,
                                     int& out_w) {
  const int xmaps = std::min(nrow, n);
  const int ymaps = (n + xmaps - 1) / xmaps;
  const int height = h + padding, width = w + padding;
  out_h = height * ymaps + padding;
  out_w = width * xmaps + padding;
  std::vector<float> grid(static_cast<std::size_t>(3 * out_h * out_w), pad_value);
  int k = 0;
  for (int y = 0; y < ymaps; ++y) {
    for (int xm = 0; xm < xmaps; ++xm) {
      if (k >= n) break;
      for (int ch = 0; ch < 3; ++ch)
        for (int i = 0; i < height - padding; ++i)
          for (int j = 0; j < width - padding; ++j)
            grid[static_cast<std::size_t>((ch * out_h + y * height + padding + i) * out_w +
                                          xm * width + padding + j)] =
                x[static_cast<std::size_t>(((k * c) + (c == 1 ? 0 : ch)) * h * w + i * w + j)];
      ++k;
    }
  }
  return grid;
}

struct GridCase {
  int n, c, h, w, nrow, padding;
  float pad_value;
};

class MakeGrid : public ::testing::TestWithParam<GridCase> {};

TEST_P(MakeGrid, MatchesTorchvisionFormula) {
  const GridCase& g = GetParam();
  const Tensor images = testing::random_tensor({g.n, g.c, g.h, g.w}, 7 + g.n);
  GridOptions options;
  options.nrow = g.nrow;
  options.padding = g.padding;
  options.pad_value = g.pad_value;
  const Tensor grid = make_grid(images, options);
  int eh = 0, ew = 0;
  const std::vector<float> expected = make_grid_formula(
      images.to_vector(), g.n, g.c, g.h, g.w, g.nrow, g.padding, g.pad_value, eh, ew);
  ASSERT_EQ(grid.shape(), (Shape{3, eh, ew}));
  EXPECT_EQ(grid.to_vector(), expected);

  const GridGeometry geo = grid_geometry(g.n, g.h, g.w, options);
  EXPECT_EQ(geo.height, eh);
  EXPECT_EQ(geo.width, ew);
  EXPECT_EQ(geo.columns, std::min(g.nrow, g.n));
  for (int k = 0; k < g.n; ++k) {
    // The first pixel of image k (channel 0) sits where the geometry says.
    const float first = images.to_vector()[static_cast<std::size_t>(k * g.c * g.h * g.w)];
    EXPECT_EQ(grid.to_vector()[static_cast<std::size_t>(geo.y(k) * ew + geo.x(k))], first) << k;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Viz,
    MakeGrid,
    ::testing::Values(GridCase{4, 3, 32, 32, 8, 2, 0.f},  // the tutorial's call
                      GridCase{10, 3, 5, 4, 8, 2, 0.f},   // two rows, 2 empty
                      GridCase{7, 3, 3, 5, 3, 3, 0.5f},
                      GridCase{3, 1, 4, 4, 2, 0, 1.f},  // 1 channel -> RGB
                      GridCase{2, 3, 2, 2, 1, 1, -1.f}),
    [](const ::testing::TestParamInfo<GridCase>& info) {
      const GridCase& g = info.param;
      return "n" + std::to_string(g.n) + "_c" + std::to_string(g.c) + "_" + std::to_string(g.h) +
             "x" + std::to_string(g.w) + "_nrow" + std::to_string(g.nrow) + "_pad" +
             std::to_string(g.padding);
    });

TEST(Viz, MakeGridTutorialSizes) {
  // imshow(make_grid(images)) on the first test batch of 4: a 36 x 138 picture, images at x = 2,
  // 36, 70, 104, the padding 0 (mid grey after img / 2 + 0.5).
  const GridGeometry g = grid_geometry(4, 32, 32);
  EXPECT_EQ(g.columns, 4);
  EXPECT_EQ(g.rows, 1);
  EXPECT_EQ(g.height, 36);
  EXPECT_EQ(g.width, 138);
  EXPECT_EQ(g.x(0), 2);
  EXPECT_EQ(g.x(1), 36);
  EXPECT_EQ(g.x(3), 104);
  EXPECT_EQ(g.y(3), 2);
  const GridGeometry g9 = grid_geometry(9, 32, 32);  // nrow 8: a second row holding one image
  EXPECT_EQ(g9.rows, 2);
  EXPECT_EQ(g9.height, 70);
  EXPECT_EQ(g9.width, 274);
  EXPECT_EQ(g9.x(8), 2);
  EXPECT_EQ(g9.y(8), 36);
}

TEST(Viz, MakeGridSingleImageAndErrors) {
  // torchvision returns a lone image as it is, with no padding.
  const Tensor one = testing::random_tensor({1, 3, 4, 5}, 3);
  const Tensor g = make_grid(one);
  EXPECT_EQ(g.shape(), (Shape{3, 4, 5}));
  EXPECT_EQ(g.to_vector(), one.to_vector());
  try {
    make_grid(Tensor::zeros({4, 2, 8, 8}));
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("[4, 2, 8, 8]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_grid(Tensor::zeros({3, 8, 8})), std::invalid_argument);
  GridOptions bad;
  bad.nrow = 0;
  EXPECT_THROW(make_grid(Tensor::zeros({2, 3, 8, 8}), bad), std::invalid_argument);
  bad.nrow = 8;
  bad.padding = -1;
  EXPECT_THROW(grid_geometry(2, 8, 8, bad), std::invalid_argument);
}

TEST(Viz, ImageFromChw01TruncatesClipsAndUpscales) {
  // Pixel 0 of each channel: 0, 0.5, 1; pixel 1: 1.2 (clipped), -0.1 (clipped), 0.999.
  const Tensor t = Tensor::from_vector({0.f, 1.2f, 0.5f, -0.1f, 1.f, 0.999f}, {3, 1, 2});
  const Image one = image_from_chw01(t);
  ASSERT_EQ(one.width, 2);
  ASSERT_EQ(one.height, 1);
  EXPECT_EQ(one.at(0, 0)[0], 0);
  EXPECT_EQ(one.at(0, 0)[1], 127);  // int(0.5 * 255) = int(127.5)
  EXPECT_EQ(one.at(0, 0)[2], 255);
  EXPECT_EQ(one.at(1, 0)[0], 255);
  EXPECT_EQ(one.at(1, 0)[1], 0);
  EXPECT_EQ(one.at(1, 0)[2], 254);
  const Image big = image_from_chw01(t, 3);
  EXPECT_EQ(big.width, 6);
  EXPECT_EQ(big.height, 3);
  EXPECT_EQ(big.at(5, 2)[2], 254);
  EXPECT_EQ(big.at(2, 1)[1], 127);
  EXPECT_THROW(image_from_chw01(t, 0), std::invalid_argument);
  EXPECT_THROW(image_from_chw01(Tensor::from_vector(
                   {std::numeric_limits<float>::quiet_NaN(), 0.f, 0.f}, {3, 1, 1})),
               std::invalid_argument);
}

TEST(Viz, LabelledGridKeepsTheGridAndAddsCaptions) {
  const Tensor images = testing::random_tensor({4, 3, 32, 32}, 11);
  const int scale = 4;
  const Image out =
      labelled_grid(images, {{"true: cat", "pred: cat"}, {"ship"}, {}, {"plane", "x"}}, scale);
  const GridGeometry g = grid_geometry(4, 32, 32);
  ASSERT_EQ(out.width, g.width * scale);
  ASSERT_GT(out.height, g.height * scale);  // the caption band
  // The grid part is make_grid shown as img / 2 + 0.5, upscaled.
  std::vector<float> grid = make_grid(images).to_vector();
  for (float& v : grid) v = v / 2 + 0.5f;
  const Image expected = image_from_chw01(Tensor::from_vector(grid, {3, g.height, g.width}), scale);
  for (int y = 0; y < expected.height; ++y) {
    for (int x = 0; x < expected.width; ++x) {
      for (int c = 0; c < 3; ++c) ASSERT_EQ(out.at(x, y)[c], expected.at(x, y)[c]) << x << "," << y;
    }
  }
  // Padding (normalized 0) is mid grey.
  EXPECT_EQ(out.at(0, 0)[0], 127);
  // Text under image 0 and none under image 2 (no caption).
  auto dark_pixels = [&](int x0, int x1) {
    int dark = 0;
    for (int y = expected.height; y < out.height; ++y)
      for (int x = x0; x < x1; ++x) dark += out.at(x, y)[0] < 100;
    return dark;
  };
  EXPECT_GT(dark_pixels(g.x(0) * scale, (g.x(0) + 32) * scale), 20);
  EXPECT_EQ(dark_pixels(g.x(2) * scale, (g.x(2) + 32) * scale), 0);
  EXPECT_THROW(labelled_grid(images, {{"a"}}, scale), std::invalid_argument);
}

TEST(Viz, FontDrawsGlyphsAndClips) {
  EXPECT_EQ(text_width("", 1), 0);
  EXPECT_EQ(text_width("a", 1), 5);
  EXPECT_EQ(text_width("ab", 2), 22);
  Image img = Image::blank(40, 12, 3);
  draw_text(img, 1, 1, "Plane 0.87", Rgb8{0, 0, 0}, 1);
  int dark = 0;
  for (std::size_t i = 0; i < img.pixels.size(); i += 3) dark += img.pixels[i] == 0;
  EXPECT_GT(dark, 30);
  // Different letters differ; upper case uses the lowercase glyph; off-image text is clipped.
  auto render = [](const std::string& s) {
    Image im = Image::blank(8, 10, 3);
    draw_text(im, 1, 1, s, Rgb8{0, 0, 0}, 1);
    return std::string(im.pixels.begin(), im.pixels.end());
  };
  std::set<std::string> distinct;
  for (const char* s : {"a", "b", "c", "0", "1", ".", "?"}) distinct.insert(render(s));
  EXPECT_EQ(distinct.size(), 7u);
  EXPECT_EQ(render("A"), render("a"));
  EXPECT_EQ(render("\x01"), render("?"));
  Image small = Image::blank(3, 3, 3);
  draw_text(small, -10, -10, "clipped text", Rgb8{0, 0, 0}, 3);
  draw_text(small, 100, 100, "far", Rgb8{0, 0, 0}, 1);
}

TEST(Viz, TitledRowPlacesPanelsUnderTitles) {
  Image red = Image::blank(10, 8, 3, 0);
  for (std::size_t i = 0; i < red.pixels.size(); i += 3) red.pixels[i] = 255;
  Image blue = Image::blank(6, 12, 4, 0);
  for (std::size_t i = 0; i < blue.pixels.size(); i += 4) {
    blue.pixels[i + 2] = 255;
    blue.pixels[i + 3] = 255;
  }
  const std::vector<Image> panels = {red, blue};
  const std::vector<std::string> titles = {"r", "bb"};
  const Image row = titled_row(panels, titles, "header", 1);
  EXPECT_GE(row.width, 10 + 6);
  EXPECT_GE(row.height, 12 + 2 * kGlyphLineHeight);
  int reds = 0, blues = 0;
  for (int y = 0; y < row.height; ++y) {
    for (int x = 0; x < row.width; ++x) {
      const std::uint8_t* p = row.at(x, y);
      reds += p[0] == 255 && p[1] == 0 && p[2] == 0;
      blues += p[0] == 0 && p[1] == 0 && p[2] == 255;
    }
  }
  EXPECT_EQ(reds, 80);
  EXPECT_EQ(blues, 72);
  EXPECT_THROW(titled_row(panels, std::vector<std::string>{"one"}, "", 1), std::invalid_argument);
  EXPECT_THROW(titled_row({}, {}, "", 1), std::invalid_argument);
}

}  // namespace
}  // namespace gradlens::viz
