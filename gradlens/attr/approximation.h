// Integration points and weights of IntegratedGradients' path integral over alpha in [0, 1], as
// Captum computes them: Gauss-Legendre (numpy's leggauss mapped to [0, 1], the default) and the
// Riemann rules (torch.linspace in float32; weights 1/n, the trapezoid's ends halved).
#pragma once

#include <string>
#include <vector>

#include "gradlens/export.h"

namespace gradlens::attr {

enum class Approximation {
  GaussLegendre,
  RiemannLeft,
  RiemannRight,
  RiemannMiddle,
  RiemannTrapezoid
};

/// "gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid".
GRADLENS_API Approximation parse_approximation(const std::string& name);
GRADLENS_API const char* approximation_name(Approximation method);

struct GRADLENS_API Quadrature {
  std::vector<double> alphas;
  std::vector<double> weights;
};

/// n >= 1 points (the Riemann rules need n >= 2 where they divide by n - 1).
GRADLENS_API Quadrature quadrature(Approximation method, int n);

}  // namespace gradlens::attr
