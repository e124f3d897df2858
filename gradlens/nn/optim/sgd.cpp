#include "gradlens/nn/optim/sgd.h"

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

void SGD::zero_grad() {
  for (auto& p : params_) p.tensor.zero_grad();
}

}  // namespace gradlens::nn
