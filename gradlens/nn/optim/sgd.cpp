#include "gradlens/nn/optim/sgd.h"

#include <algorithm>
#include <stdexcept>

#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/kernels/backend.h"

namespace gradlens::nn {

SGD::SGD(std::vector<Parameter> params, SGDOptions options)
    : params_(std::move(params)), buffers_(params_.size()), options_(options) {
  GRADLENS_CHECK(options.lr >= 0.f, "[SGD] lr must be >= 0, got ", options.lr);
  GRADLENS_CHECK(options.momentum >= 0.f, "[SGD] momentum must be >= 0, got ", options.momentum);
  GRADLENS_CHECK(!options.nesterov || (options.momentum > 0.f && options.dampening == 0.f),
                 "[SGD] nesterov needs momentum > 0 and dampening 0");
}

void SGD::step() {
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].tensor;
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    SgdParams sp;
    sp.lr = options_.lr;
    sp.momentum = options_.momentum;
    sp.dampening = options_.dampening;
    sp.weight_decay = options_.weight_decay;
    sp.nesterov = options_.nesterov;
    sp.first_step = !buffers_[i].defined();
    if (options_.momentum != 0.f && sp.first_step)
      buffers_[i] = Tensor::empty(p.shape(), p.device());
    backend_for(p.device())
        .sgd_update(sp,
                    p.data(),
                    g.data(),
                    buffers_[i].defined() ? buffers_[i].data() : nullptr,
                    p.numel());
  }
}

std::map<std::string, Tensor> SGD::momentum_buffers() const {
  std::map<std::string, Tensor> buffers;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (buffers_[i].defined()) buffers.emplace(params_[i].name, buffers_[i]);
  }
  return buffers;
}

void SGD::load_momentum_buffers(const std::map<std::string, Tensor>& buffers) {
  std::vector<Tensor> loaded(params_.size());
  for (const auto& entry : buffers) {
    const std::string& name = entry.first;
    const Tensor& buffer = entry.second;
    const auto it = std::find_if(
        params_.begin(), params_.end(), [&](const Parameter& p) { return p.name == name; });
    if (it == params_.end())
      throw std::invalid_argument("[SGD] momentum buffer '" + name + "' names no parameter");
    if (buffer.shape() != it->tensor.shape())
      throw std::invalid_argument("[SGD] momentum buffer '" + name + "' is " +
                                  shape_str(buffer.shape()) + ", its parameter " +
                                  shape_str(it->tensor.shape()));
    loaded[static_cast<std::size_t>(it - params_.begin())] = buffer.to(it->tensor.device()).clone();
  }
  buffers_ = std::move(loaded);
}

void SGD::zero_grad() {
  for (auto& p : params_) p.tensor.zero_grad();
}

}  // namespace gradlens::nn
