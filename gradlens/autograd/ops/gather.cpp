// gather and the layout ops built on it. Each layout op computes, on the host, which input element
// every output element reads (or none: a padded position); one gather kernel then moves the data
// on the tensor's device. These maps never read an input twice, so the backward is a gather too,
// by the inverse map, with zeros where no output read an input.
#include <algorithm>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>

#include "gradlens/autograd/ops.h"
#include "gradlens/autograd/ops/common.h"

namespace gradlens {

using detail::backend_of;

// Which input element each output reads (-1: the fill), and its inverse for the backward; the
// kernels read them in place on the CPU and from copies made once per device elsewhere.
struct GatherIndex {
  std::vector<std::int64_t> index, inverse;

  const std::int64_t* on(Device device, bool inverse_map) const {
    const std::vector<std::int64_t>& v = inverse_map ? inverse : index;
    if (device == kCPU) return v.data();
    const std::lock_guard<std::mutex> lock(mutex_);
    for (const Copy& c : copies_)
      if (c.device == device && c.inverse == inverse_map) return c.buffer.data();
    copies_.push_back({device, inverse_map, detail::IndexBuffer(v, device)});
    return copies_.back().buffer.data();
  }

 private:
  struct Copy {
    Device device;
    bool inverse;
    detail::IndexBuffer buffer;
  };
  mutable std::mutex mutex_;
  mutable std::vector<Copy> copies_;
};

namespace {

using IndexMap = GatherIndex;

struct GatherNode : Node {
  Shape in_shape;
  std::shared_ptr<const IndexMap> map;
  std::string_view name() const override { return Ops::gather.name(); }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>&) override {
    Tensor dx = Tensor::empty(in_shape, dy.device());
    backend_of(dy).gather(dy.data(), map->on(dy.device(), true), 0.f, dx.data(), dx.numel());
    return {dx};
  }
};

std::shared_ptr<const IndexMap> make_map(std::vector<std::int64_t> index, const Shape& in_shape) {
  const std::int64_t in_numel = shape_numel(in_shape);
  auto map = std::make_shared<IndexMap>();
  map->inverse.assign(static_cast<std::size_t>(in_numel), -1);
  for (std::size_t i = 0; i < index.size(); ++i) {
    const std::int64_t at = index[i];
    if (at < 0) continue;
    GRADLENS_CHECK(at < in_numel, "[gather] index ", at, " outside ", shape_str(in_shape));
    GRADLENS_CHECK(map->inverse[static_cast<std::size_t>(at)] < 0,
                   "[gather] element ",
                   at,
                   " of ",
                   shape_str(in_shape),
                   " is read twice");
    map->inverse[static_cast<std::size_t>(at)] = static_cast<std::int64_t>(i);
  }
  map->index = std::move(index);
  return map;
}

Tensor gather_map(const Tensor& x, Shape shape, std::shared_ptr<const IndexMap> map, float fill) {
  const detail::OpScope scope("gather");
  GRADLENS_CHECK(static_cast<std::int64_t>(map->index.size()) == shape_numel(shape),
                 "[gather] ",
                 map->index.size(),
                 " indices for the output ",
                 shape_str(shape));
  Tensor y = Tensor::empty(shape, x.device());
  backend_of(x).gather(x.data(), map->on(x.device(), false), fill, y.data(), y.numel());
  if (should_record({&x})) {
    auto node = std::make_shared<GatherNode>();
    node->in_shape = x.shape();
    node->map = std::move(map);
    record(y, node, {x});
  }
  return y;
}

std::int64_t normalize_axis(std::string_view op, std::int64_t axis, std::int64_t rank) {
  GRADLENS_CHECK(-rank <= axis && axis < std::max<std::int64_t>(rank, 1),
                 "[",
                 op,
                 "] axis ",
                 axis,
                 " out of range for rank ",
                 rank);
  return axis < 0 ? axis + rank : axis;
}

std::vector<std::int64_t> strides_of(const Shape& shape) {
  std::vector<std::int64_t> strides(shape.size(), 1);
  for (std::size_t d = shape.size(); d-- > 1;) strides[d - 1] = strides[d] * shape[d];
  return strides;
}

// Output dim d reads input dim src[d] at coordinate (o - offset[d]) / step[d] when that divides
// evenly (for spread) and lies inside the input, else nothing: step < 0 means "every |step|-th
// input", so slices walk the input, spreads walk the output.
struct AxisMap {
  std::int64_t src = 0, offset = 0, step = 1;
};

std::vector<std::int64_t> affine_index(const Shape& in,
                                       const Shape& out,
                                       const std::vector<AxisMap>& maps) {
  const auto in_strides = strides_of(in);
  const std::int64_t count = shape_numel(out);
  std::vector<std::int64_t> index(static_cast<std::size_t>(count));
  std::vector<std::int64_t> coord(out.size(), 0);
  for (std::int64_t i = 0; i < count; ++i) {
    std::int64_t at = 0;
    for (std::size_t d = 0; d < out.size() && at >= 0; ++d) {
      const AxisMap& m = maps[d];
      std::int64_t c = coord[d] - m.offset;
      if (m.step > 1) {  // spread: only every step-th output reads
        if (c % m.step != 0) {
          at = -1;
          break;
        }
        c /= m.step;
      } else if (m.step < 0) {  // strided read
        c = m.offset + coord[d] * -m.step;
      }
      if (c < 0 || c >= in[static_cast<std::size_t>(m.src)]) {
        at = -1;
        break;
      }
      at += c * in_strides[static_cast<std::size_t>(m.src)];
    }
    index[static_cast<std::size_t>(i)] = at;
    for (std::size_t d = out.size(); d-- > 0;) {
      if (++coord[d] < out[d]) break;
      coord[d] = 0;
    }
  }
  return index;
}

// The map of an affine layout op, built once per shapes and axis maps: a model runs the same
// layout ops on the same shapes call after call. A few dozen maps per thread at most.
std::shared_ptr<const IndexMap> affine_map(const Shape& in,
                                           const Shape& out,
                                           const std::vector<AxisMap>& maps) {
  thread_local std::map<std::vector<std::int64_t>, std::shared_ptr<const IndexMap>> cache;
  std::vector<std::int64_t> key(in.begin(), in.end());
  key.push_back(-1);
  key.insert(key.end(), out.begin(), out.end());
  for (const AxisMap& m : maps) key.insert(key.end(), {m.src, m.offset, m.step});
  if (const auto it = cache.find(key); it != cache.end()) return it->second;
  if (cache.size() >= 64) cache.clear();
  auto map = make_map(affine_index(in, out, maps), in);
  cache.emplace(std::move(key), map);
  return map;
}

}  // namespace

Tensor gather(const Tensor& x, Shape shape, std::vector<std::int64_t> index, float fill) {
  detail::check_defined("gather", x, "x");
  return gather_map(x, std::move(shape), make_map(std::move(index), x.shape()), fill);
}

std::shared_ptr<const GatherIndex> make_gather_index(std::vector<std::int64_t> index,
                                                     const Shape& in_shape) {
  return make_map(std::move(index), in_shape);
}

Tensor gather(const Tensor& x,
              Shape shape,
              const std::shared_ptr<const GatherIndex>& index,
              float fill) {
  detail::check_defined("gather", x, "x");
  GRADLENS_CHECK(index != nullptr && static_cast<std::int64_t>(index->inverse.size()) == x.numel(),
                 "[gather] the index was made for another input than ",
                 shape_str(x.shape()));
  return gather_map(x, std::move(shape), index, fill);
}

Tensor permute(const Tensor& x, const std::vector<std::int64_t>& order) {
  detail::check_defined("permute", x, "x");
  const auto rank = static_cast<std::int64_t>(x.dim());
  GRADLENS_CHECK(static_cast<std::int64_t>(order.size()) == rank,
                 "[permute] ",
                 order.size(),
                 " axes for ",
                 shape_str(x.shape()));
  std::vector<bool> seen(order.size(), false);
  Shape shape(order.size());
  std::vector<AxisMap> maps(order.size());
  for (std::size_t d = 0; d < order.size(); ++d) {
    const std::int64_t a = normalize_axis("permute", order[d], rank);
    GRADLENS_CHECK(!seen[static_cast<std::size_t>(a)], "[permute] axis ", a, " given twice");
    seen[static_cast<std::size_t>(a)] = true;
    shape[d] = x.size(a);
    maps[d].src = a;
  }
  return gather_map(x, shape, affine_map(x.shape(), shape, maps), 0.f);
}

Tensor pad(const Tensor& x,
           const std::vector<std::int64_t>& before,
           const std::vector<std::int64_t>& after,
           float value) {
  detail::check_defined("pad", x, "x");
  GRADLENS_CHECK(before.size() == x.shape().size() && after.size() == x.shape().size(),
                 "[pad] needs one before and one after per dim of ",
                 shape_str(x.shape()));
  Shape shape = x.shape();
  std::vector<AxisMap> maps(shape.size());
  for (std::size_t d = 0; d < shape.size(); ++d) {
    shape[d] += before[d] + after[d];
    GRADLENS_CHECK(shape[d] >= 0,
                   "[pad] pads ",
                   before[d],
                   ", ",
                   after[d],
                   " crop more than dim ",
                   d,
                   " of ",
                   shape_str(x.shape()));
    maps[d] = {static_cast<std::int64_t>(d), before[d], 1};
  }
  return gather_map(x, shape, affine_map(x.shape(), shape, maps), value);
}

Tensor strided_slice(const Tensor& x,
                     const std::vector<std::int64_t>& starts,
                     const std::vector<std::int64_t>& sizes,
                     const std::vector<std::int64_t>& steps) {
  detail::check_defined("strided_slice", x, "x");
  GRADLENS_CHECK(starts.size() == x.shape().size() && sizes.size() == starts.size() &&
                     steps.size() == starts.size(),
                 "[strided_slice] needs a start, size and step per dim of ",
                 shape_str(x.shape()));
  Shape shape(sizes.begin(), sizes.end());
  std::vector<AxisMap> maps(shape.size());
  for (std::size_t d = 0; d < shape.size(); ++d) {
    GRADLENS_CHECK(steps[d] >= 1 && sizes[d] >= 0 && starts[d] >= 0 &&
                       (sizes[d] == 0 || starts[d] + (sizes[d] - 1) * steps[d] < x.shape()[d]),
                   "[strided_slice] dim ",
                   d,
                   ": ",
                   sizes[d],
                   " elements from ",
                   starts[d],
                   " by ",
                   steps[d],
                   " leave ",
                   shape_str(x.shape()));
    maps[d] = {static_cast<std::int64_t>(d), starts[d], -steps[d]};
  }
  return gather_map(x, shape, affine_map(x.shape(), shape, maps), 0.f);
}

Tensor spread(const Tensor& x, const std::vector<std::int64_t>& factors) {
  detail::check_defined("spread", x, "x");
  GRADLENS_CHECK(factors.size() == x.shape().size(),
                 "[spread] needs a factor per dim of ",
                 shape_str(x.shape()));
  Shape shape = x.shape();
  std::vector<AxisMap> maps(shape.size());
  for (std::size_t d = 0; d < shape.size(); ++d) {
    GRADLENS_CHECK(factors[d] >= 1, "[spread] factor ", factors[d], " below 1");
    if (shape[d] > 0) shape[d] = (shape[d] - 1) * factors[d] + 1;
    maps[d] = {static_cast<std::int64_t>(d), 0, factors[d]};
  }
  return gather_map(x, shape, affine_map(x.shape(), shape, maps), 0.f);
}

Tensor concat(const std::vector<Tensor>& xs, std::int64_t axis) {
  GRADLENS_CHECK(!xs.empty(), "[concat] no tensors given");
  detail::check_defined("concat", xs[0], "tensor 0");
  const auto rank = static_cast<std::int64_t>(xs[0].dim());
  const std::int64_t a = normalize_axis("concat", axis, rank);
  Shape shape = xs[0].shape();
  shape[static_cast<std::size_t>(a)] = 0;
  std::vector<Tensor> flat;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    detail::check_defined("concat", xs[k], "a tensor");
    Shape other = xs[k].shape();
    GRADLENS_CHECK(other.size() == shape.size(),
                   "[concat] tensor ",
                   k,
                   " has shape ",
                   shape_str(other),
                   ", tensor 0 ",
                   shape_str(xs[0].shape()));
    for (std::size_t d = 0; d < shape.size(); ++d) {
      GRADLENS_CHECK(d == static_cast<std::size_t>(a) || other[d] == xs[0].shape()[d],
                     "[concat] tensor ",
                     k,
                     " has shape ",
                     shape_str(other),
                     ", tensor 0 ",
                     shape_str(xs[0].shape()),
                     ": they differ outside axis ",
                     a);
    }
    shape[static_cast<std::size_t>(a)] += other[static_cast<std::size_t>(a)];
    flat.push_back(reshape(xs[k], {xs[k].numel()}));
  }
  // Output [outer, sum of the parts' axis sizes, inner] reads each part's block in turn.
  std::int64_t outer = 1, inner = 1;
  for (std::int64_t d = 0; d < a; ++d) outer *= shape[static_cast<std::size_t>(d)];
  for (std::int64_t d = a + 1; d < rank; ++d) inner *= shape[static_cast<std::size_t>(d)];
  std::vector<std::int64_t> index;
  index.reserve(static_cast<std::size_t>(shape_numel(shape)));
  for (std::int64_t o = 0; o < outer; ++o) {
    std::int64_t base = 0;
    for (const Tensor& x : xs) {
      const std::int64_t block = x.shape()[static_cast<std::size_t>(a)] * inner;
      for (std::int64_t j = 0; j < block; ++j) index.push_back(base + o * block + j);
      base += x.numel();
    }
  }
  return gather(flat.size() == 1 ? flat[0] : cat(flat), shape, std::move(index), 0.f);
}

}  // namespace gradlens
