#include "gradlens/nn/evaluate.h"

#include <algorithm>
#include <numeric>

#include "gradlens/autograd/error.h"
#include "gradlens/autograd/grad_mode.h"
#include "gradlens/autograd/ops.h"
#include "gradlens/data/transforms.h"

namespace gradlens::nn {

EvalResult evaluate(Module& model,
                    const data::CifarSplit& split,
                    std::int64_t batch_size,
                    Device device) {
  GRADLENS_CHECK(batch_size >= 1, "[evaluate] batch size must be >= 1, got ", batch_size);
  NoGradGuard no_grad;
  EvalResult r;
  r.predictions.reserve(static_cast<std::size_t>(split.size()));
  std::vector<std::int64_t> idx;
  for (std::int64_t start = 0; start < split.size(); start += batch_size) {
    const std::int64_t end = std::min(split.size(), start + batch_size);
    idx.resize(static_cast<std::size_t>(end - start));
    std::iota(idx.begin(), idx.end(), start);
    const std::vector<std::int64_t> predicted =
        argmax_rows(model(data::to_normalized_tensor(split, idx).to(device)));
    for (std::int64_t i = 0; i < end - start; ++i) {
      const std::int64_t pred = predicted[static_cast<std::size_t>(i)];
      const std::int64_t label = split.labels[static_cast<std::size_t>(start + i)];
      r.predictions.push_back(pred);
      r.class_total[label]++;
      r.total++;
      if (pred == label) {
        r.class_correct[label]++;
        r.correct++;
      }
    }
  }
  return r;
}

}  // namespace gradlens::nn
