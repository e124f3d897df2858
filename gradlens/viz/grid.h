// torchvision.utils.make_grid (default nrow 8, padding 2, pad_value 0) as the tutorial uses it,
// imshow(make_grid(images)) after img / 2 + 0.5, and a labelled PNG version of that grid.
#pragma once

#include <string>
#include <vector>

#include "gradlens/autograd/tensor.h"
#include "gradlens/export.h"
#include "gradlens/viz/png.h"

namespace gradlens::viz {

struct GRADLENS_API GridOptions {
  int nrow = 8;           // images per grid row
  int padding = 2;        // pixels around and between images
  float pad_value = 0.f;  // in the images' own units (0 in normalized space is mid-grey on screen)
};

/// make_grid's geometry for `count` images of height x width: xmaps = min(nrow, count) columns,
/// ymaps = ceil(count / xmaps) rows, a (height * ymaps + padding) x (width * xmaps + padding)
/// canvas with height/width = image size + padding; image k sits at column k % xmaps, row k /
/// xmaps.
struct GRADLENS_API GridGeometry {
  int columns = 0, rows = 0;
  int width = 0, height = 0;            // the whole grid
  int cell_width = 0, cell_height = 0;  // image size + padding
  int padding = 0;
  int x(int k) const { return (k % columns) * cell_width + padding; }
  int y(int k) const { return (k / columns) * cell_height + padding; }
};
GRADLENS_API GridGeometry grid_geometry(int count,
                                        int height,
                                        int width,
                                        const GridOptions& options = {});

/// make_grid on images [N, C, H, W] (C = 1 is repeated to 3 channels) -> [C, H', W']. As
/// torchvision, a single image comes back as it is, without padding. Throws std::invalid_argument
/// naming the shape for anything else.
GRADLENS_API Tensor make_grid(const Tensor& images, const GridOptions& options = {});

/// A CPU image [3, H, W] in [0, 1] as 8-bit RGB, clip(int(v * 255)), upscaled `scale` times by
/// nearest neighbour. Throws std::invalid_argument on a bad shape, a NaN or a bad scale.
GRADLENS_API Image image_from_chw01(const Tensor& chw, int scale = 1);
/// Nearest-neighbour upscale by an integer factor (1..256).
GRADLENS_API Image upscale(const Image& image, int scale);

/// The tutorial's grid as a picture: make_grid(images) shown as img / 2 + 0.5, upscaled `scale`
/// times, with a white band under every grid row holding each image's caption lines (drawn with
/// the built-in font, centred under the image). `captions` has one entry per image (may be empty).
GRADLENS_API Image labelled_grid(const Tensor& normalized_images,
                                 const std::vector<std::vector<std::string>>& captions,
                                 int scale,
                                 const GridOptions& options = {});

}  // namespace gradlens::viz
