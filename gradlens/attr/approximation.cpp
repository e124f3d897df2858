#include "gradlens/attr/approximation.h"

#include <cmath>
#include <numbers>
#include <stdexcept>

#include "gradlens/autograd/error.h"

namespace gradlens::attr {

Approximation parse_approximation(const std::string& name) {
  if (name == "gausslegendre") return Approximation::GaussLegendre;
  if (name == "riemann_left") return Approximation::RiemannLeft;
  if (name == "riemann_right") return Approximation::RiemannRight;
  if (name == "riemann_middle") return Approximation::RiemannMiddle;
  if (name == "riemann_trapezoid") return Approximation::RiemannTrapezoid;
  throw std::invalid_argument("[integrated_gradients] unknown method '" + name +
                              "' (gausslegendre, riemann_left, riemann_right, riemann_middle, "
                              "riemann_trapezoid)");
}

const char* approximation_name(Approximation method) {
  switch (method) {
    case Approximation::GaussLegendre:
      return "gausslegendre";
    case Approximation::RiemannLeft:
      return "riemann_left";
    case Approximation::RiemannRight:
      return "riemann_right";
    case Approximation::RiemannMiddle:
      return "riemann_middle";
    case Approximation::RiemannTrapezoid:
      return "riemann_trapezoid";
  }
  return "?";
}

namespace {

// torch.linspace(start, end, n) in float32 (ATen's CPU kernel: the first half counts up from
// start, the second half down from end, with step computed in float).
std::vector<double> linspace_f32(float start, float end, int n) {
  std::vector<double> out(static_cast<std::size_t>(n));
  if (n == 1) {
    out[0] = start;
    return out;
  }
  const float step = (end - start) / static_cast<float>(n - 1);
  const int halfway = n / 2;
  for (int i = 0; i < n; ++i) {
    out[static_cast<std::size_t>(i)] = i < halfway ? start + step * static_cast<float>(i)
                                                   : end - step * static_cast<float>(n - i - 1);
  }
  return out;
}

// Gauss-Legendre nodes and weights on [-1, 1] by Newton's method on P_n, ascending like numpy.
void gauss_legendre(int n, std::vector<double>& x, std::vector<double>& w) {
  x.assign(static_cast<std::size_t>(n), 0.0);
  w.assign(static_cast<std::size_t>(n), 0.0);
  for (int i = 0; i < (n + 1) / 2; ++i) {
    double z = std::cos(std::numbers::pi * (i + 0.75) / (n + 0.5));
    double dp = 0.0;
    for (int iter = 0; iter < 100; ++iter) {
      double p0 = 1.0, p1 = z;
      for (int k = 2; k <= n; ++k) {
        const double p2 = ((2.0 * k - 1.0) * z * p1 - (k - 1.0) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      dp = n * (z * p1 - p0) / (z * z - 1.0);
      const double dz = p1 / dp;
      z -= dz;
      if (std::fabs(dz) < 1e-16) break;
    }
    const double weight = 2.0 / ((1.0 - z * z) * dp * dp);
    x[static_cast<std::size_t>(i)] = -z;
    x[static_cast<std::size_t>(n - 1 - i)] = z;
    w[static_cast<std::size_t>(i)] = weight;
    w[static_cast<std::size_t>(n - 1 - i)] = weight;
  }
}

}  // namespace

Quadrature quadrature(Approximation method, int n) {
  GRADLENS_CHECK(n >= 1, "[integrated_gradients] n_steps must be >= 1, got ", n);
  Quadrature q;
  const double dn = n;
  // Captum passes Python floats; torch.linspace rounds them to float32 before stepping.
  auto f32 = [](double v) { return static_cast<float>(v); };
  switch (method) {
    case Approximation::GaussLegendre: {
      std::vector<double> x, w;
      gauss_legendre(n, x, w);
      for (int i = 0; i < n; ++i) {
        q.alphas.push_back(0.5 * (1.0 + x[static_cast<std::size_t>(i)]));
        q.weights.push_back(0.5 * w[static_cast<std::size_t>(i)]);
      }
      return q;
    }
    case Approximation::RiemannLeft:
      q.alphas = linspace_f32(0.f, f32(1.0 - 1.0 / dn), n);
      break;
    case Approximation::RiemannRight:
      q.alphas = linspace_f32(f32(1.0 / dn), 1.f, n);
      break;
    case Approximation::RiemannMiddle:
      q.alphas = linspace_f32(f32(1.0 / (2.0 * dn)), f32(1.0 - 1.0 / (2.0 * dn)), n);
      break;
    case Approximation::RiemannTrapezoid:
      GRADLENS_CHECK(n >= 2, "[integrated_gradients] riemann_trapezoid needs n_steps >= 2");
      q.alphas = linspace_f32(0.f, 1.f, n);
      break;
  }
  q.weights.assign(static_cast<std::size_t>(n), 1.0 / n);
  if (method == Approximation::RiemannTrapezoid) {
    q.weights.front() = 1.0 / (2 * n);  // Captum: [1/2n] + [1/n] * (n - 2) + [1/2n]
    q.weights.back() = 1.0 / (2 * n);
  }
  return q;
}

}  // namespace gradlens::attr
