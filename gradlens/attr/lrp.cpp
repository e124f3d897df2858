// LRP-epsilon as a gradient pass. For a rule node z = f(a) (conv2d, linear, max_pool2d):
//   grad_a = a * backward_f(grad_z / stabilize(z, eps))
// relu: grad_in = grad_out (no mask: the next rule layer's "* a" already zeroes closed units);
// every other op (reshape, pick, ...) keeps its plain backward. Relevance = grad_x * f_t(x).
#include "gradlens/attr/lrp.h"

#include <algorithm>
#include <memory>

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

std::vector<Tensor> epsilon_rule(float eps,
                                 Node& node,
                                 const Tensor& grad_out,
                                 const std::vector<bool>& needs) {
  const auto* io = dynamic_cast<const detail::UnaryNode*>(&node);
  GRADLENS_CHECK(io != nullptr && io->x.defined() && io->y.defined(),
                 "[lrp] the ",
                 node.name(),
                 " node does not keep its input and output");
  std::vector<bool> input_only(needs.size(), false);  // relevance flows to the layer input only
  input_only[0] = needs[0];
  if (!needs[0]) return std::vector<Tensor>(needs.size());
  std::vector<Tensor> g = node.backward(div(grad_out, stabilize(io->y, eps)), input_only);
  g[0] = mul(g[0], io->x);
  return g;
}

}  // namespace

Attributions LRP::attribute(const Tensor& inputs, const Targets& targets, const Tensor&) {
  GRADLENS_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) > 0,
                 "[lrp] inputs must be a non-empty batch");
  NoGradGuard no_grad;  // only the modified pass records a tape
  const std::int64_t n = inputs.size(0);
  const auto t = expand_targets(targets, n);
  const Shape row_shape(inputs.shape().begin() + 1, inputs.shape().end());
  const std::int64_t rows = planner_.chunk_rows(forward_, row_shape, inputs.device());

  const float eps = options_.epsilon;
  const BackwardRule rule = [eps](Node& node, const Tensor& g, const std::vector<bool>& needs) {
    return epsilon_rule(eps, node, g, needs);
  };
  std::vector<Tensor> relevance, outputs;
  for_each_chunk(n, rows, [&](std::int64_t b, std::int64_t e) {
    // Rules first: a model that sees them keeps its ops separate on the tape (no fused
    // conv2d_relu).
    BackwardOverrideGuard conv_rule(Ops::conv2d, rule);
    BackwardOverrideGuard linear_rule(Ops::linear, rule);
    BackwardOverrideGuard pool_rule(Ops::max_pool2d, rule);
    BackwardOverrideGuard relu_pass(Ops::relu,
                                    [](Node& node, const Tensor& g, const std::vector<bool>&) {
                                      std::vector<Tensor> out(node.inputs.size());
                                      out[0] = g;
                                      return out;
                                    });
    // Relevance passes unchanged through the structural ops; anything else needs a rule.
    const RuleCoverageGuard coverage(
        "lrp",
        {Ops::reshape, Ops::slice, Ops::cat, Ops::index_rows, Ops::pick, Ops::sum, Ops::sum_dim},
        options_.allow_plain_gradient);
    EnableGradGuard grad_on;
    Tensor x = slice(inputs, b, e).detach();
    x.set_requires_grad(true);
    const Tensor logits = forward_(x);
    GRADLENS_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) == e - b,
                   "[lrp] the model must map [N, ...] to logits [N, C]; got ",
                   logits.defined() ? shape_str(logits.shape()) : std::string("nothing"),
                   " for input ",
                   shape_str(x.shape()));
    const Tensor selected = pick(
        logits, std::span(t).subspan(static_cast<std::size_t>(b), static_cast<std::size_t>(e - b)));
    const Tensor normalized = grad({sum(selected)}, {x})[0];
    NoGradGuard no_grad_inner;
    const Tensor f = selected.detach();
    Shape column(static_cast<std::size_t>(inputs.dim()), 1);
    column[0] = e - b;
    relevance.push_back(mul(normalized, reshape(f, column)));  // normalized relevance * f_t(x)
    outputs.push_back(f);
  });
  Attributions out;
  out.values = relevance.size() == 1 ? relevance[0] : cat(relevance);
  out.delta = sub(outputs.size() == 1 ? outputs[0] : cat(outputs), row_sums(out.values));
  return out;
}

}  // namespace gradlens::attr

// Its entry in the method registry (registry.h).
namespace gradlens::attr {
namespace {

constexpr OptionSpec kLrpOptions[] = {{.name = "lrp_epsilon",
                                       .type = OptionType::Float,
                                       .default_value = "1e-09",
                                       .min = 0,
                                       .help = "EpsilonRule's stabiliser",
                                       .captum = "epsilon"}};

std::unique_ptr<Attribution> make_lrp(nn::Module& model, const MethodArgs& args) {
  return std::make_unique<LRP>(
      model, LRPOptions{.epsilon = static_cast<float>(args.number("lrp_epsilon"))});
}

}  // namespace

extern const MethodInfo lrp_method{.name = "lrp",
                                   .captum_class = "LRP",
                                   .has_delta = true,
                                   .options = kLrpOptions,
                                   .make = &make_lrp};

}  // namespace gradlens::attr
