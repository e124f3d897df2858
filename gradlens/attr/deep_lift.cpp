// DeepLift rescale rules on the tape. Every relu / max_pool2d node of the doubled pass holds its
// input x and output y for the 2N rows; d(t) = t[0, N) - t[N, 2N), repeated for both halves.
//   relu:     grad_in = seen * d(y) / d(x); relu's own backward of grad_out where |d(x)| < eps
//   sigmoid, tanh, leaky_relu (Captum's other rescaled activations) and clamp (ReLU6; Captum
//   leaves nn.ReLU6 at the plain gradient, the DeepLift paper rescales every elementwise
//   nonlinearity): grad_in = grad_out * d(y) / d(x), the plain gradient where |d(x)| < eps
//   softmax:  that rescale, minus its mean over every element of the doubled batch (Captum's rule)
//   max-pool: xmax = max(o_x, o_r), u = unpool(grad_out * [xmax - o_r; o_x - xmax]) (own argmax);
//             grad_in = (u[0, N) + u[N, 2N)) / d(x); the plain gradient where |d(x)| < eps
// NOTE: Captum's relu hook reads its grad_output before the MaxPool2d hook has replaced it, so for
// a relu feeding a max-pool `seen` is the PLAIN max-pool gradient, while autograd (the fallback)
// carries the max-pool rule's. We reproduce that: the max-pool rule hands its producer both
// gradients.
#include "gradlens/attr/deep_lift.h"

#include <algorithm>
#include <memory>
#include <unordered_map>
#include <utility>

#include "gradlens/attr/gradient.h"
#include "gradlens/attr/registry.h"
#include "gradlens/autograd/engine.h"
#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/hooks.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/autograd/ops/common.h"

namespace gradlens::attr {

namespace {

constexpr std::string_view kRelu = Ops::relu.name();
constexpr std::string_view kMaxPool = Ops::max_pool2d.name();

// Ops whose plain gradient is DeepLift's multiplier: the linear maps (products and quotients by
// a constant among them) and the structural ops.
std::vector<OpId> deeplift_plain_ops() {
  std::vector<OpId> ops(Ops::structural.begin(), Ops::structural.end());
  ops.insert(ops.end(), {Ops::conv2d, Ops::linear, Ops::mul, Ops::div});
  return ops;
}

// The node's saved input and output; both rules need them.
const detail::UnaryNode& saved_io(const Node& node) {
  const auto* unary = dynamic_cast<const detail::UnaryNode*>(&node);
  GRADLENS_CHECK(unary != nullptr && unary->x.defined() && unary->y.defined(),
                 "[deeplift] the ",
                 node.name(),
                 " node does not keep its input and output");
  return *unary;
}

// cat([t[0, N) - t[N, 2N); the same]) for a node tensor of the doubled batch [2N, ...].
Tensor pair_delta(const Tensor& t, std::string_view op) {
  GRADLENS_CHECK(t.dim() >= 1 && t.size(0) % 2 == 0,
                 "[deeplift] the ",
                 op,
                 " node holds ",
                 shape_str(t.shape()),
                 ", not the doubled batch [inputs; baselines] (2N rows)");
  const std::int64_t n = t.size(0) / 2;
  const Tensor d = sub(slice(t, 0, n), slice(t, n, 2 * n));
  return cat({d, d});
}

Tensor add_or_set(const Tensor& acc, const Tensor& g) { return acc.defined() ? add(acc, g) : g; }

// State of one backward pass: what the max-pool rules sent to each relu that feeds them.
class RescaleRules {
 public:
  explicit RescaleRules(float eps) : eps_(eps) {}

  std::vector<Tensor> relu(Node& node, const Tensor& grad_out, const std::vector<bool>& needs) {
    const auto& io = saved_io(node);
    Tensor seen = grad_out;
    if (auto it = routed_.find(&node); it != routed_.end()) {
      // grad_out = (max-pool rule gradients) + (the rest); the relu sees the plain ones instead.
      // With a max-pool as the only consumer, this is exactly the plain gradient (g - g = 0).
      seen = add(it->second.plain, sub(grad_out, it->second.rule));
      routed_.erase(it);
    }
    const Tensor fallback = node.backward(grad_out, needs)[0];
    // (seen * d(y)) / d(x), in Captum's order of operations
    return {safe_div(mul(seen, pair_delta(io.y, kRelu)), pair_delta(io.x, kRelu), eps_, fallback)};
  }

  std::vector<Tensor> rescale(Node& node, const Tensor& grad_out, const std::vector<bool>& needs) {
    const auto& io = saved_io(node);
    const Tensor fallback = node.backward(grad_out, needs)[0];
    return {safe_div(mul(grad_out, pair_delta(io.y, node.name())),
                     pair_delta(io.x, node.name()),
                     eps_,
                     fallback)};
  }

  std::vector<Tensor> softmax(Node& node, const Tensor& grad_out, const std::vector<bool>& needs) {
    const Tensor unnormalized = rescale(node, grad_out, needs)[0];
    const float inv_count = 1.f / static_cast<float>(unnormalized.numel());
    return {sub(unnormalized, mul_scalar(sum(unnormalized), inv_count))};
  }

  std::vector<Tensor> max_pool(Node& node, const Tensor& grad_out, const std::vector<bool>& needs) {
    const auto& io = saved_io(node);
    const Tensor delta_in = pair_delta(io.x, kMaxPool);
    const std::int64_t n = io.y.size(0) / 2;
    const Tensor o_x = slice(io.y, 0, n), o_r = slice(io.y, n, 2 * n);
    const Tensor x_wins = step(sub(o_x, o_r));  // exact max: one of the two terms is 0
    const Tensor xmax = add(mul(x_wins, o_x), mul(affine(x_wins, -1.f, 1.f), o_r));
    const Tensor delta_out = cat({sub(xmax, o_r), sub(o_x, xmax)});
    // The node's own backward is the unpool: each half goes to its own first-max positions.
    const Tensor routed = node.backward(mul(grad_out, delta_out), needs)[0];
    const Tensor summed = add(slice(routed, 0, n), slice(routed, n, 2 * n));
    // NOTE: Captum's fallback takes grad_input[0], the plain gradient of the batch's FIRST row,
    // broadcast (captum#1276, fixed by PR #1847); we take each row's own plain gradient. After a
    // relu it can only show where the relu's input ties exactly between image and baseline (none
    // in the reference data).
    const Tensor plain = node.backward(grad_out, needs)[0];
    const Tensor rule = safe_div(cat({summed, summed}), delta_in, eps_, plain);
    const Node* producer = node.inputs[0].grad_fn().get();
    if (producer != nullptr && producer->name() == kRelu) {
      Routed& r = routed_[producer];
      r.plain = add_or_set(r.plain, plain);
      r.rule = add_or_set(r.rule, rule);
    }
    return {rule};
  }

 private:
  struct Routed {
    Tensor plain, rule;  // sums over the max-pool consumers of one relu
  };
  float eps_;
  std::unordered_map<const Node*, Routed> routed_;
};

struct PairGradients {
  Tensor multipliers;  // d/dx of the doubled pass, rows [0, N)
  Tensor gap;          // f_t(x) - f_t(r), [N]
};

PairGradients doubled_pass(const ForwardFn& forward,
                           const Tensor& inputs,
                           const Tensor& baselines,
                           std::span<const std::int64_t> targets,
                           float eps,
                           bool allow_plain_gradient) {
  const std::int64_t n = inputs.size(0);
  std::vector<std::int64_t> both_targets(targets.begin(), targets.end());
  both_targets.insert(both_targets.end(), targets.begin(), targets.end());

  // The rules are set before the forward so that a model sees them and keeps relu a separate op
  // on the tape (the max-pool rule routes to the relu that feeds it).
  RescaleRules rules(eps);
  BackwardOverrideGuard relu_rule(
      Ops::relu, [&rules](Node& node, const Tensor& g, const std::vector<bool>& needs) {
        return rules.relu(node, g, needs);
      });
  BackwardOverrideGuard pool_rule(
      Ops::max_pool2d, [&rules](Node& node, const Tensor& g, const std::vector<bool>& needs) {
        return rules.max_pool(node, g, needs);
      });
  std::vector<std::unique_ptr<BackwardOverrideGuard>> activation_rules;
  for (const OpId op : {Ops::sigmoid, Ops::tanh, Ops::leaky_relu, Ops::clamp}) {
    activation_rules.push_back(std::make_unique<BackwardOverrideGuard>(
        op, [&rules](Node& node, const Tensor& g, const std::vector<bool>& needs) {
          return rules.rescale(node, g, needs);
        }));
  }
  BackwardOverrideGuard softmax_rule(
      Ops::softmax, [&rules](Node& node, const Tensor& g, const std::vector<bool>& needs) {
        return rules.softmax(node, g, needs);
      });
  const RuleCoverageGuard coverage("deeplift", deeplift_plain_ops(), allow_plain_gradient);
  EnableGradGuard grad_on;
  Tensor both = cat({inputs.detach(), baselines.detach()});
  both.set_requires_grad(true);
  const Tensor logits = forward(both);
  GRADLENS_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) == 2 * n,
                 "[deeplift] the model must map [N, ...] to logits [N, C]; got ",
                 logits.defined() ? shape_str(logits.shape()) : std::string("nothing"),
                 " for input ",
                 shape_str(both.shape()));
  const Tensor selected = pick(logits, both_targets);
  const Tensor g = grad({sum(selected)}, {both})[0];

  NoGradGuard no_grad;
  const Tensor out = selected.detach();
  return {slice(g, 0, n), sub(slice(out, 0, n), slice(out, n, 2 * n))};
}

}  // namespace

Attributions DeepLift::attribute(const Tensor& inputs,
                                 const Targets& targets,
                                 const Tensor& baselines) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) > 0,
                 "[",
                 name(),
                 "] inputs must be a non-empty batch");
  NoGradGuard no_grad;  // only the doubled pass records a tape
  const std::int64_t n = inputs.size(0);
  const auto t = expand_targets(targets, n);
  const Tensor base = expand_baselines(baselines, inputs, name());
  GRADLENS_CHECK(base.device() == inputs.device(),
                 "[",
                 name(),
                 "] baselines on ",
                 base.device().str(),
                 ", inputs on ",
                 inputs.device().str());

  // One pair (input, baseline) is two rows of a gradient call.
  const Shape row_shape(inputs.shape().begin() + 1, inputs.shape().end());
  const std::int64_t rows = planner_.chunk_rows(forward_, row_shape, inputs.device());
  const std::int64_t pairs = std::max<std::int64_t>(1, rows / 2);

  std::vector<Tensor> multipliers, gaps;
  for_each_chunk(n, pairs, [&](std::int64_t b, std::int64_t e) {
    PairGradients part = doubled_pass(
        forward_,
        slice(inputs, b, e),
        slice(base, b, e),
        std::span(t).subspan(static_cast<std::size_t>(b), static_cast<std::size_t>(e - b)),
        options_.eps,
        options_.allow_plain_gradient);
    multipliers.push_back(std::move(part.multipliers));
    gaps.push_back(std::move(part.gap));
  });
  const Tensor m = multipliers.size() == 1 ? multipliers[0].clone() : cat(multipliers);
  Attributions out;
  out.values = options_.multiply_by_inputs ? mul(sub(inputs, base), m) : m;
  out.delta = sub(row_sums(out.values), gaps.size() == 1 ? gaps[0] : cat(gaps));
  return out;
}

}  // namespace gradlens::attr

// Its entry in the method registry (registry.h).
namespace gradlens::attr {
namespace {

constexpr OptionSpec kDeepLiftOptions[] = {
    {.name = "multiply_by_inputs",
     .type = OptionType::Bool,
     .default_value = "true",
     .help = "(inputs - baselines) * multipliers, or the multipliers alone"},
    {.name = "eps",
     .type = OptionType::Float,
     .default_value = "1e-10",
     .min = 0,
     .help = "|delta_in| below this takes the plain gradient"}};

DeepLiftOptions deeplift_options(const MethodArgs& args) {
  return {.multiply_by_inputs = args.flag("multiply_by_inputs"),
          .eps = static_cast<float>(args.number("eps"))};
}

std::unique_ptr<Attribution> make_deeplift(nn::Module& model, const MethodArgs& args) {
  return std::make_unique<DeepLift>(model, deeplift_options(args));
}

}  // namespace

extern const MethodInfo deeplift_method{.name = "deeplift",
                                        .captum_class = "DeepLift",
                                        .baselines = Baselines::PerInput,
                                        .has_delta = true,
                                        .options = kDeepLiftOptions,
                                        .make = &make_deeplift};

}  // namespace gradlens::attr
