// viz/: Captum's _normalize_attr against visualization_reference.safetensors, matplotlib colormap
// values, PNG round trips and the error paths (zero threshold, NaN, bad shapes).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "gradlens/nn/safetensors.h"
#include "gradlens/viz/colormap.h"
#include "gradlens/viz/png.h"
#include "gradlens/viz/render.h"
#include "gradlens/viz/visualize.h"
#include "tests/testing.h"

namespace gradlens::viz {
namespace {

constexpr int kImages = 16, kC = 3, kH = 32, kW = 32;
constexpr std::size_t kPlane = static_cast<std::size_t>(kH) * kW;

// Image i of a [16, 3, 32, 32] attribution as HWC, as the tutorial passes it to Captum.
std::vector<float> hwc_of(const std::vector<float>& all, int i) {
  std::vector<float> out(kC * kPlane);
  const float* src = all.data() + static_cast<std::size_t>(i) * kC * kPlane;
  for (std::size_t p = 0; p < kPlane; ++p) {
    for (int c = 0; c < kC; ++c) out[p * kC + c] = src[c * kPlane + p];
  }
  return out;
}

struct Case {
  const char* prefix;  // in visualization_reference.safetensors
  const char* file;    // the attribution's file
  const char* attribution;
  Sign sign;
  double outlier_perc;
};

class NormalizeReference : public ::testing::TestWithParam<Case> {};

TEST_P(NormalizeReference, MatchesCaptum) {
  const Case& tc = GetParam();
  GRADLENS_SHARED_FILE(vis_path, "reference/visualization_reference.safetensors");
  const std::string attr_path = testing::shared_path(std::string("reference/") + tc.file);
  ASSERT_FALSE(attr_path.empty());
  const auto vis = nn::SafetensorsFile::load(vis_path);
  const auto attrs = nn::SafetensorsFile::load(attr_path);
  const std::string p = tc.prefix;
  const std::vector<float> attr = attrs.tensor(tc.attribution).to_vector();
  const std::vector<float> ref = vis.tensor(p + ".norm_attr").to_vector();
  const std::vector<double> ref_thr = vis.float64s(p + ".threshold");
  const std::vector<std::int64_t> ref_idx = vis.int64s(p + ".threshold_index");

  for (int i = 0; i < kImages; ++i) {
    const std::vector<float> hwc = hwc_of(attr, i);
    const NormalizedMap m =
        normalize_attr(hwc, Layout::HWC, kC, kH, kW, tc.sign, tc.outlier_perc, tc.attribution);
    ASSERT_EQ(m.height, kH);
    ASSERT_EQ(m.width, kW);
    EXPECT_TRUE(m.warning.empty()) << m.warning;
    EXPECT_LE(std::llabs(m.threshold_index - ref_idx[i]), 1) << p << " image " << i;
    EXPECT_NEAR(m.threshold, ref_thr[i], 1e-5 * std::fabs(ref_thr[i])) << p << " image " << i;
    double worst = 0;
    for (std::size_t k = 0; k < kPlane; ++k) {
      worst = std::max(worst, static_cast<double>(std::fabs(m.values[k] - ref[i * kPlane + k])));
    }
    EXPECT_LE(worst, 1e-5) << p << " image " << i;

    // The CHW tensor overload (what attr/ returns) gives the same map.
    const Tensor chw = Tensor::from_vector(
        std::vector<float>(attr.begin() + static_cast<std::ptrdiff_t>(i * kC * kPlane),
                           attr.begin() + static_cast<std::ptrdiff_t>((i + 1) * kC * kPlane)),
        {kC, kH, kW});
    const NormalizedMap m2 = normalize_attr(chw, tc.sign, tc.outlier_perc, tc.attribution);
    EXPECT_EQ(m2.values, m.values);
    EXPECT_EQ(m2.threshold_index, m.threshold_index);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Viz,
    NormalizeReference,
    ::testing::Values(
        Case{"saliency", "public_attributions.safetensors", "saliency", Sign::AbsoluteValue, 2},
        Case{"ig", "public_attributions.safetensors", "ig_gausslegendre_50", Sign::All, 2},
        Case{"nt10_smoothgrad_sq",
             "public_stochastic.safetensors",
             "nt10_ig_smoothgrad_sq",
             Sign::AbsoluteValue,
             10},
        Case{"nt100_smoothgrad_sq",
             "public_stochastic.safetensors",
             "nt100_ig_smoothgrad_sq_seed_a",
             Sign::AbsoluteValue,
             10},
        Case{"deeplift", "public_attributions.safetensors", "deeplift", Sign::All, 2}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.prefix); });

TEST(Viz, OriginalImageAndBackgroundGray) {
  GRADLENS_SHARED_FILE(vis_path, "reference/visualization_reference.safetensors");
  GRADLENS_SHARED_FILE(inputs_path, "reference/public_inputs.safetensors");
  const auto vis = nn::SafetensorsFile::load(vis_path);
  const auto inputs = nn::SafetensorsFile::load(inputs_path);
  const std::vector<float> x = inputs.tensor("inputs").to_vector();
  const std::vector<std::uint8_t> u8 = inputs.bytes_u8("images_u8");
  const std::vector<float> ref_orig = vis.tensor("original_image").to_vector();
  const std::vector<double> ref_gray = vis.float64s("background_gray");
  for (int i = 0; i < kImages; ++i) {
    const std::size_t off = static_cast<std::size_t>(i) * kC * kPlane;
    const std::vector<float> orig =
        original_from_normalized_chw(std::span<const float>(x.data() + off, kC * kPlane), kH, kW);
    for (std::size_t k = 0; k < orig.size(); ++k) {
      ASSERT_EQ(orig[k], ref_orig[off + k]) << "image " << i << " element " << k;
    }
    const std::vector<int> prepared = prepare_image(orig);
    const std::vector<double> gray = background_gray(prepared, kH, kW);
    for (std::size_t k = 0; k < kPlane; ++k) {
      ASSERT_EQ(gray[k], ref_gray[i * kPlane + k]) << "image " << i << " pixel " << k;
    }
    // The raw bytes give the same prepared image except where float rounding of u8/255*255 lands
    // just below an integer (then Captum's truncation loses one).
    const std::vector<int> from_u8 =
        image_from_chw_u8(std::span<const std::uint8_t>(u8.data() + off, kC * kPlane), kH, kW);
    for (std::size_t k = 0; k < from_u8.size(); ++k) {
      ASSERT_LE(std::abs(from_u8[k] - prepared[k]), 1);
    }
  }
}

// matplotlib 3.6.3 (Debian), cmap(np.float32(v)) and cmap(np.float32(v), bytes=True).
struct CmapPoint {
  const char* name;
  float v;
  double r, g, b;
  int r8, g8, b8;
};
constexpr CmapPoint kCmapPoints[] = {
    {"RdWhGn", 0.f, 1.000000000, 0.000000000, 0.000000000, 255, 0, 0},
    {"RdWhGn", 0.1f, 1.000000000, 0.196078431, 0.196078431, 255, 50, 50},
    {"RdWhGn", 0.25f, 1.000000000, 0.501960784, 0.501960784, 255, 128, 128},
    {"RdWhGn", 0.5f, 0.996078431, 0.998046905, 0.996078431, 254, 254, 254},
    {"RdWhGn", 0.77f, 0.454901961, 0.728519800, 0.454901961, 116, 185, 116},
    {"RdWhGn", 1.f, 0.000000000, 0.501960784, 0.000000000, 0, 128, 0},
    {"Blues", 0.f, 0.968627451, 0.984313725, 1.000000000, 247, 251, 255},
    {"Blues", 0.1f, 0.891733948, 0.935101884, 0.975394079, 227, 238, 248},
    {"Blues", 0.3f, 0.716186082, 0.833202614, 0.916155325, 182, 212, 233},
    {"Blues", 0.5f, 0.417085736, 0.680630527, 0.838231449, 106, 173, 213},
    {"Blues", 0.77f, 0.111726259, 0.420499808, 0.692118416, 28, 107, 176},
    {"Blues", 1.f, 0.031372549, 0.188235294, 0.419607843, 8, 48, 107},
    {"Greens", 0.1f, 0.913264129, 0.966705113, 0.896193772, 232, 246, 228},
    {"Greens", 0.5f, 0.451764706, 0.767089581, 0.461207228, 115, 195, 117},
    {"Greens", 0.77f, 0.112495194, 0.523875433, 0.252902730, 28, 133, 64},
    {"Greens", 0.999f, 0.000000000, 0.266666667, 0.105882353, 0, 68, 27},
    {"Reds", 0.1f, 0.996924260, 0.896193772, 0.848904268, 254, 228, 216},
    {"Reds", 0.25f, 0.988235294, 0.732072280, 0.629926951, 252, 186, 160},
    {"Reds", 0.77f, 0.769196463, 0.087750865, 0.108066128, 196, 22, 27},
    {"Reds", 1.f, 0.403921569, 0.000000000, 0.050980392, 103, 0, 12},
    {"gray", 0.1f, 0.098039216, 0.098039216, 0.098039216, 25, 25, 25},
    {"gray", 0.5f, 0.501960784, 0.501960784, 0.501960784, 128, 128, 128},
    {"gray", 0.77f, 0.772549020, 0.772549020, 0.772549020, 197, 197, 197},
};

TEST(Viz, ColormapsMatchMatplotlib) {
  for (const CmapPoint& pt : kCmapPoints) {
    const Colormap map = parse_colormap(pt.name);
    const Rgb c = color(map, pt.v);
    EXPECT_NEAR(c.r, pt.r, 1e-6) << pt.name << " at " << pt.v;
    EXPECT_NEAR(c.g, pt.g, 1e-6) << pt.name << " at " << pt.v;
    EXPECT_NEAR(c.b, pt.b, 1e-6) << pt.name << " at " << pt.v;
    const Rgb8 b = color_u8(map, pt.v);
    EXPECT_EQ(b[0], pt.r8) << pt.name << " at " << pt.v;
    EXPECT_EQ(b[1], pt.g8) << pt.name << " at " << pt.v;
    EXPECT_EQ(b[2], pt.b8) << pt.name << " at " << pt.v;
  }
  // Out of range clamps to the ends (matplotlib's under/over default to the end colours).
  EXPECT_EQ(color_u8(Colormap::Blues, -0.5f), color_u8(Colormap::Blues, 0.f));
  EXPECT_EQ(color_u8(Colormap::Blues, 1.5f), color_u8(Colormap::Blues, 1.f));
  EXPECT_EQ(default_colormap(Sign::All), Colormap::RdWhGn);
  EXPECT_EQ(default_colormap(Sign::AbsoluteValue), Colormap::Blues);
  EXPECT_EQ(default_colormap(Sign::Positive), Colormap::Greens);
  EXPECT_EQ(default_colormap(Sign::Negative), Colormap::Reds);
}

std::string temp_png(const std::string& stem) {
  return (std::filesystem::temp_directory_path() /
          (stem + "_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
           std::to_string(reinterpret_cast<std::uintptr_t>(&stem)) + ".png"))
      .string();
}

TEST(Viz, PngRoundTrip) {
  for (int channels : {3, 4}) {
    Image img = Image::blank(7, 5, channels);
    for (std::size_t i = 0; i < img.pixels.size(); ++i) {
      img.pixels[i] = static_cast<std::uint8_t>((i * 37 + 11) % 256);
    }
    const std::string path = temp_png("gradlens_viz_rt" + std::to_string(channels));
    write_png(path, img);
    const Image back = read_png(path);
    EXPECT_EQ(back.width, img.width);
    EXPECT_EQ(back.height, img.height);
    EXPECT_EQ(back.channels, channels);
    EXPECT_EQ(back.pixels, img.pixels);
    // Nothing but the target: no temp file left beside it.
    for (const auto& entry :
         std::filesystem::directory_iterator(std::filesystem::path(path).parent_path())) {
      EXPECT_EQ(entry.path().string().find(path + ".tmp"), std::string::npos);
    }
    std::filesystem::remove(path);
    EXPECT_FALSE(encode_png(img).empty());
  }
}

TEST(Viz, PngWriteFailureNamesPathAndLeavesNothing) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / "gradlens_viz_no_such_dir").string();
  std::filesystem::remove_all(dir);
  const std::string path = dir + "/x.png";
  try {
    write_png(path, Image::blank(2, 2, 3));
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_THROW(write_png("/tmp/bad.png", Image{2, 2, 3, {1, 2, 3}}), std::runtime_error);
  EXPECT_FALSE(std::filesystem::exists("/tmp/bad.png.tmp"));
  EXPECT_THROW(read_png(dir + "/missing.png"), std::runtime_error);
}

RenderOptions opts(Method method, int scale, bool colorbar = false) {
  RenderOptions o;
  o.method = method;
  o.scale = scale;
  o.colorbar = colorbar;
  return o;
}

TEST(Viz, ZeroAttributionGivesZerosAndWarning) {
  const std::vector<float> zeros(kC * kPlane, 0.f);
  for (Sign sign : {Sign::All, Sign::Positive, Sign::Negative, Sign::AbsoluteValue}) {
    const NormalizedMap m = normalize_attr(zeros, Layout::CHW, kC, kH, kW, sign, 2, "zeros");
    EXPECT_EQ(m.threshold, 0.0);
    EXPECT_FALSE(m.warning.empty());
    EXPECT_NE(m.warning.find("zeros"), std::string::npos) << m.warning;
    for (float v : m.values) ASSERT_EQ(v, 0.f);
  }
  // Positive sign on an all-negative map: also threshold 0, not an assertion.
  const std::vector<float> neg(kC * kPlane, -1.f);
  const NormalizedMap m = normalize_attr(neg, Layout::CHW, kC, kH, kW, Sign::Positive);
  EXPECT_FALSE(m.warning.empty());
  // And it still renders.
  const std::vector<int> image(kC * kPlane, 100);
  const Image panel = render_panel(m, Sign::Positive, image, opts(Method::BlendedHeatMap, 2));
  EXPECT_EQ(panel.width, 2 * kW);
}

TEST(Viz, NaNAndShapeErrorsNameTheTensor) {
  std::vector<float> a(kC * kPlane, 1.f);
  a[1234] = std::numeric_limits<float>::quiet_NaN();
  try {
    normalize_attr(a, Layout::CHW, kC, kH, kW, Sign::All, 2, "ig[3]");
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("ig[3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
  const std::vector<float> short_attr(100, 1.f);
  try {
    normalize_attr(short_attr, Layout::HWC, kC, kH, kW, Sign::All, 2, "saliency[0]");
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("saliency[0]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(normalize_attr(Tensor::zeros({kH, kW}), Sign::All, 2, "t"), std::invalid_argument);
  EXPECT_THROW(
      normalize_attr(std::vector<float>(kC * kPlane, 1.f), Layout::CHW, kC, kH, kW, Sign::All, 100),
      std::invalid_argument);
}

TEST(Viz, SignSemantics) {
  // One pixel per value, one channel: [-4, -1, 0, 2, 3].
  const std::vector<float> v = {-4.f, -1.f, 0.f, 2.f, 3.f};
  const NormalizedMap neg = normalize_attr(v, Layout::CHW, 1, 1, 5, Sign::Negative, 0);
  EXPECT_EQ(neg.threshold, -4.0);  // negated threshold: the result is positive
  EXPECT_FLOAT_EQ(neg.values[0], 1.f);
  EXPECT_FLOAT_EQ(neg.values[1], 0.25f);
  EXPECT_FLOAT_EQ(neg.values[4], 0.f);
  const NormalizedMap all = normalize_attr(v, Layout::CHW, 1, 1, 5, Sign::All, 0);
  EXPECT_EQ(all.threshold, 4.0);
  EXPECT_FLOAT_EQ(all.values[0], -1.f);
  EXPECT_FLOAT_EQ(all.values[4], 0.75f);
  // Channel sum is signed before the sign step: |1 + (-1)| = 0, not 2.
  const std::vector<float> two = {1.f, -1.f, 3.f, 3.f};  // HWC: pixel 0 = (1,-1), pixel 1 = (3,3)
  const NormalizedMap abs = normalize_attr(two, Layout::HWC, 2, 1, 2, Sign::AbsoluteValue, 0);
  EXPECT_EQ(abs.values[0], 0.f);
  EXPECT_EQ(abs.values[1], 1.f);
}

TEST(Viz, RenderPanels) {
  const std::vector<float> v = {-1.f, -0.5f, 0.f, 0.5f};
  NormalizedMap m;
  m.values = v;
  m.height = 2;
  m.width = 2;
  const std::vector<int> image = {0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255};
  const Image heat = render_panel(m, Sign::All, {}, opts(Method::HeatMap, 3));
  EXPECT_EQ(heat.width, 6);
  EXPECT_EQ(heat.height, 6);
  EXPECT_EQ(heat.channels, 3);
  EXPECT_EQ(heat.at(0, 0)[0], 255);  // -1 -> red
  EXPECT_EQ(heat.at(0, 0)[1], 0);
  EXPECT_EQ(heat.at(2, 2)[0], 255);  // nearest upscale keeps the pixel
  const Image blended = render_panel(m, Sign::All, image, opts(Method::BlendedHeatMap, 1));
  // Pixel 0: gray 0 (black) under red at alpha 0.5.
  EXPECT_EQ(blended.at(0, 0)[0], 128);
  EXPECT_EQ(blended.at(0, 0)[1], 0);
  EXPECT_THROW(render_panel(m, Sign::All, image, opts(Method::MaskedImage, 1)),
               std::invalid_argument);
  EXPECT_THROW(render_panel(m, Sign::All, {}, opts(Method::BlendedHeatMap, 1)),
               std::invalid_argument);
  NormalizedMap pos = m;
  pos.values = {0.f, 0.5f, 1.f, 0.25f};
  const Image alpha = render_panel(pos, Sign::Positive, image, opts(Method::AlphaScaling, 1));
  EXPECT_EQ(alpha.channels, 4);
  EXPECT_EQ(alpha.at(1, 0)[3], 127);  // int(0.5 * 255)
  EXPECT_EQ(alpha.at(0, 1)[3], 255);
  const Image masked = render_panel(pos, Sign::Positive, image, opts(Method::MaskedImage, 1));
  EXPECT_EQ(masked.at(1, 0)[0], 50);
  EXPECT_EQ(masked.at(1, 1)[0], 63);  // int(255 * 0.25)
  const Image bar = render_panel(pos, Sign::Positive, image, opts(Method::BlendedHeatMap, 4, true));
  EXPECT_GT(bar.height, 8);
  EXPECT_EQ(bar.width, 8);
}

}  // namespace
}  // namespace gradlens::viz
