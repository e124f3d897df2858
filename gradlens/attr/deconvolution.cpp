// Deconvolution: at each relu, grad_in = relu(grad_out).
#include "gradlens/attr/deconvolution.h"

#include <memory>

#include "gradlens/attr/guided_backprop.h"
#include "gradlens/attr/registry.h"
#include "gradlens/autograd/ops.h"

namespace gradlens::attr {

Attributions Deconvolution::attribute(const Tensor& inputs, const Targets& targets, const Tensor&) {
  Attributions out;
  out.values =
      relu_rule_gradients(forward_,
                          planner_,
                          inputs,
                          targets,
                          name(),
                          [](Node& node, const Tensor& grad_out, const std::vector<bool>&) {
                            std::vector<Tensor> g(node.inputs.size());
                            g[0] = relu(grad_out);
                            return g;
                          });
  return out;
}

}  // namespace gradlens::attr

// Its entry in the method registry (registry.h).
namespace gradlens::attr {
namespace {

std::unique_ptr<Attribution> make_deconvolution(nn::Module& model, const MethodArgs&) {
  return std::make_unique<Deconvolution>(model);
}

}  // namespace

extern const MethodInfo deconvolution_method{
    .name = "deconvolution", .captum_class = "Deconvolution", .make = &make_deconvolution};

}  // namespace gradlens::attr
