// Deconvolution: at each relu, grad_in = relu(grad_out).
#include "gradlens/attr/deconvolution.h"

#include "gradlens/attr/guided_backprop.h"
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
