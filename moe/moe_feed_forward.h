// An MoE layer as a transformer block's feed-forward (nn/feed_forward.h).
#pragma once

#include "autograd/ops.h"
#include "moe/moe_layer.h"
#include "nn/feed_forward.h"

namespace mt::moe {

class MoeFeedForward final : public nn::FeedForward {
 public:
  MoeFeedForward(ParameterRegistry& params, const std::string& prefix, const MoeLayerConfig& cfg)
      : layer_(params, prefix, cfg), z_loss_coeff_(cfg.z_loss_coeff) {}
  nn::FeedForwardOutput forward(const Variable& x, bool training, RngKey key, int64_t sequence_length) const override {
    MoeOutput m = layer_.forward(x, training, key, nullptr, sequence_length);
    nn::FeedForwardOutput out;
    out.y = m.y;
    out.aux_loss = m.aux_loss;
    if (m.z_loss.defined()) {  // the router z-loss, weighted: added to the total as it is
      out.extra_loss = ag::scale(m.z_loss, z_loss_coeff_);
      out.stats.z_loss = m.z_loss.value().item();
    }
    out.stats.is_moe = true;
    out.stats.expert_counts = m.routing.assigned;
    out.stats.dropped = m.routing.dropped_fraction();
    out.stats.aux_loss = m.aux_loss.value().item();
    out.stats.entropy = m.entropy;
    return out;
  }
  int64_t active_matmul_weights() const override { return layer_.active_matmul_weights(); }
  std::vector<double>* expert_bias() override { return layer_.expert_bias(); }
  nn::GateGradientTerms* gate_gradient_terms() override { return layer_.gate_gradient_terms(); }
  std::vector<double>* global_aux_fractions() override { return layer_.global_aux_fractions(); }

 private:
  MoeLayer layer_;
  double z_loss_coeff_;
};

}  // namespace mt::moe
