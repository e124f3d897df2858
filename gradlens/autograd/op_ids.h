// Every op that records a node on the tape, as a constant: backward rules (hooks.h) and the
// methods' lists of ops they cover name ops through these, so a misspelt or renamed op is a
// compile error, not a rule that silently never applies. A node's name() is its OpId's name.
#pragma once

#include <array>
#include <string_view>

#include "gradlens/export.h"

namespace gradlens {

class GRADLENS_API OpId {
 public:
  constexpr std::string_view name() const { return name_; }
  constexpr bool operator==(const OpId& other) const { return name_ == other.name_; }

 private:
  friend struct Ops;
  constexpr explicit OpId(std::string_view name) : name_(name) {}
  std::string_view name_;
};

struct GRADLENS_API Ops {
  static constexpr OpId conv2d{"conv2d"}, conv2d_relu{"conv2d_relu"},
      conv2d_relu_pool{"conv2d_relu_pool"}, linear{"linear"}, max_pool2d{"max_pool2d"},
      relu{"relu"};
  static constexpr OpId add{"add"}, sub{"sub"}, mul{"mul"}, div{"div"}, affine{"affine"},
      safe_div{"safe_div"}, channel_affine{"channel_affine"},
      channel_affine_relu{"channel_affine_relu"}, channel_affine_add{"channel_affine_add"},
      channel_affine_add_relu{"channel_affine_add_relu"};
  static constexpr OpId abs{"abs"}, square{"square"}, sqrt{"sqrt"}, sign{"sign"}, step{"step"},
      stabilize{"stabilize"};
  static constexpr OpId softmax{"softmax"}, log_softmax{"log_softmax"},
      cross_entropy{"cross_entropy"};
  static constexpr OpId sum{"sum"}, sum_dim{"sum_dim"}, reshape{"reshape"}, slice{"slice"},
      cat{"cat"}, index_rows{"index_rows"}, pick{"pick"}, gather{"gather"};
  // The activations of imported models.
  static constexpr OpId exp{"exp"}, log{"log"}, tanh{"tanh"}, sigmoid{"sigmoid"},
      leaky_relu{"leaky_relu"}, clamp{"clamp"};

  static constexpr std::array<OpId, 39> all = {conv2d,
                                               conv2d_relu,
                                               conv2d_relu_pool,
                                               linear,
                                               max_pool2d,
                                               relu,
                                               add,
                                               sub,
                                               mul,
                                               div,
                                               affine,
                                               safe_div,
                                               abs,
                                               square,
                                               sqrt,
                                               sign,
                                               step,
                                               stabilize,
                                               softmax,
                                               log_softmax,
                                               cross_entropy,
                                               sum,
                                               sum_dim,
                                               reshape,
                                               slice,
                                               cat,
                                               index_rows,
                                               pick,
                                               gather,
                                               exp,
                                               log,
                                               tanh,
                                               sigmoid,
                                               leaky_relu,
                                               clamp,
                                               channel_affine,
                                               channel_affine_relu,
                                               channel_affine_add,
                                               channel_affine_add_relu};
  /// The structural and linear ops: under every modified-backward method their plain gradient is
  /// what the method means (shapes, sums, copies, affine maps, the target pick).
  static constexpr std::array<OpId, 13> structural = {reshape,
                                                      slice,
                                                      cat,
                                                      index_rows,
                                                      pick,
                                                      gather,
                                                      sum,
                                                      sum_dim,
                                                      add,
                                                      sub,
                                                      affine,
                                                      channel_affine,
                                                      channel_affine_add};
};

}  // namespace gradlens
