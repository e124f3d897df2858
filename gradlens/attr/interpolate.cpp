// Nearest and bilinear resampling of [N, C, h, w] maps, with PyTorch 1.13's source indices and
// float32 weights (upsample_nearest2d / upsample_bilinear2d, align_corners=False):
// out = sum over the 4 corners of in * (lambda_y * lambda_x).
#include "gradlens/attr/interpolate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gradlens/autograd/error.h"

namespace gradlens::attr {

namespace {

// PyTorch's scale when only the output size is given: float(in) / out.
float scale_of(std::int64_t in, std::int64_t out) {
  return static_cast<float>(in) / static_cast<float>(out);
}

// Nearest: src = min(floor(dst * scale), in - 1).
std::vector<std::int64_t> nearest_indices(std::int64_t in, std::int64_t out) {
  std::vector<std::int64_t> src(static_cast<std::size_t>(out));
  const float scale = scale_of(in, out);
  for (std::int64_t d = 0; d < out; ++d) {
    const auto s = static_cast<std::int64_t>(std::floor(static_cast<float>(d) * scale));
    src[static_cast<std::size_t>(d)] = in == out ? d : std::min(s, in - 1);
  }
  return src;
}

// Bilinear (align_corners=False): two source indices and their weights per output index.
struct LinearTaps {
  std::vector<std::int64_t> i0, i1;
  std::vector<float> w0, w1;
};

LinearTaps linear_taps(std::int64_t in, std::int64_t out) {
  LinearTaps t;
  const float scale = scale_of(in, out);
  for (std::int64_t d = 0; d < out; ++d) {
    if (in == out) {
      t.i0.push_back(d);
      t.i1.push_back(d);
      t.w0.push_back(1.f);
      t.w1.push_back(0.f);
      continue;
    }
    float src = scale * (static_cast<float>(d) + 0.5f) - 0.5f;
    src = src < 0.f ? 0.f : src;
    const auto i0 = static_cast<std::int64_t>(src);
    const float lambda1 = std::min(std::max(src - static_cast<float>(i0), 0.f), 1.f);
    t.i0.push_back(i0);
    t.i1.push_back(i0 < in - 1 ? i0 + 1 : i0);
    t.w0.push_back(1.f - lambda1);
    t.w1.push_back(lambda1);
  }
  return t;
}

}  // namespace

Interpolation parse_interpolation(const std::string& name) {
  if (name == "nearest") return Interpolation::Nearest;
  if (name == "bilinear") return Interpolation::Bilinear;
  detail::throw_invalid("[interpolate] unknown mode '", name, "' (expected nearest or bilinear)");
}

const char* interpolation_name(Interpolation mode) {
  return mode == Interpolation::Nearest ? "nearest" : "bilinear";
}

Tensor interpolate(const Tensor& maps,
                   std::int64_t height,
                   std::int64_t width,
                   Interpolation mode) {
  GRADLENS_CHECK(maps.defined() && maps.dim() == 4 && maps.numel() > 0,
                 "[interpolate] expects maps [N, C, h, w], got ",
                 maps.defined() ? shape_str(maps.shape()) : std::string("an undefined tensor"));
  GRADLENS_CHECK(height > 0 && width > 0,
                 "[interpolate] output size must be positive, got ",
                 height,
                 " x ",
                 width,
                 " for maps ",
                 shape_str(maps.shape()));
  const std::int64_t planes = maps.size(0) * maps.size(1);
  const std::int64_t h = maps.size(2), w = maps.size(3);
  const std::vector<float> in = maps.to_vector();
  std::vector<float> out(static_cast<std::size_t>(planes * height * width));
  const auto at =
      [](std::int64_t plane, std::int64_t y, std::int64_t x, std::int64_t rows, std::int64_t cols) {
        return static_cast<std::size_t>((plane * rows + y) * cols + x);
      };

  if (mode == Interpolation::Nearest) {
    const auto ys = nearest_indices(h, height), xs = nearest_indices(w, width);
    for (std::int64_t p = 0; p < planes; ++p)
      for (std::int64_t y = 0; y < height; ++y)
        for (std::int64_t x = 0; x < width; ++x)
          out[at(p, y, x, height, width)] =
              in[at(p, ys[static_cast<std::size_t>(y)], xs[static_cast<std::size_t>(x)], h, w)];
  } else {
    const LinearTaps ty = linear_taps(h, height), tx = linear_taps(w, width);
    for (std::int64_t p = 0; p < planes; ++p) {
      for (std::int64_t y = 0; y < height; ++y) {
        const auto yi = static_cast<std::size_t>(y);
        for (std::int64_t x = 0; x < width; ++x) {
          const auto xi = static_cast<std::size_t>(x);
          // Four corner weights in float32 (h_lambda * w_lambda), their weighted sum in double,
          // rounded once: this reproduces PyTorch 1.13's CPU results bit for bit on the
          // reference maps (a float32 sum in any order is off by an ulp in a third of them).
          const double sum =
              static_cast<double>(in[at(p, ty.i0[yi], tx.i0[xi], h, w)]) * (ty.w0[yi] * tx.w0[xi]) +
              static_cast<double>(in[at(p, ty.i0[yi], tx.i1[xi], h, w)]) * (ty.w0[yi] * tx.w1[xi]) +
              static_cast<double>(in[at(p, ty.i1[yi], tx.i0[xi], h, w)]) * (ty.w1[yi] * tx.w0[xi]) +
              static_cast<double>(in[at(p, ty.i1[yi], tx.i1[xi], h, w)]) * (ty.w1[yi] * tx.w1[xi]);
          out[at(p, y, x, height, width)] = static_cast<float>(sum);
        }
      }
    }
  }
  return Tensor::from_vector(out, {maps.size(0), maps.size(1), height, width}, maps.device());
}

}  // namespace gradlens::attr
