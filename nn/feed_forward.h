// The feed-forward sub-block of a transformer layer, pluggable: the GPT model builds one per
// layer through a factory, so a dense MLP and an MoE layer (moe/, which nn/ may not include) are
// interchangeable. A feed-forward block maps x [S, h] to y [S, h] and may add an auxiliary loss
// (MoE load balancing) and load statistics for the metrics.
#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/parameters.h"
#include "parallel/communicator.h"
#include "runtime/rng.h"

namespace mt::nn {

struct LayerLoadStats {
  bool is_moe = false;
  int64_t layer = 0;
  std::vector<int64_t> expert_counts;  // assignments per expert before dropping
  double dropped = 0, aux_loss = 0, entropy = 0;
  double z_loss = 0;  // the router z-loss (unweighted), when on
  // moe_router_diagnostics: the gate weight's gradient split by loss term over the step (norms) and
  // the cosine between the LM term and the balancing term ("interference"); set per step
  bool has_gate_gradients = false;
  double gate_grad_lm = 0, gate_grad_balance = 0, gate_grad_z = 0, interference = 0;
  // moe_router_diagnostics: the drop cost (train/drop_cost.h) of the measured micro-batches: the LM
  // loss's change summed over positions when a sample of the dropped tokens is rescued, and the sample's size
  bool has_drop_cost = false;
  double drop_cost_sum = 0;
  int64_t drop_cost_tokens = 0;

  // Sums another micro-batch's or step's stats of the same layer into these (averaged when shown).
  void add(const LayerLoadStats& l) {
    expert_counts.resize(std::max(expert_counts.size(), l.expert_counts.size()), 0);
    for (size_t e = 0; e < l.expert_counts.size(); ++e) expert_counts[e] += l.expert_counts[e];
    dropped += l.dropped;
    aux_loss += l.aux_loss;
    z_loss += l.z_loss;
    entropy += l.entropy;
    has_gate_gradients = has_gate_gradients || l.has_gate_gradients;
    gate_grad_lm += l.gate_grad_lm;
    gate_grad_balance += l.gate_grad_balance;
    gate_grad_z += l.gate_grad_z;
    interference += l.interference;
    has_drop_cost = has_drop_cost || l.has_drop_cost;
    drop_cost_sum += l.drop_cost_sum;
    drop_cost_tokens += l.drop_cost_tokens;
  }
};

// The gate weight's gradient [E, h] split by the loss term it comes from, accumulated over a step's
// micro-batches on this rank: the LM term (through the combine weights, with a KD term's share),
// the balancing loss, the router z-loss. Their sum is the gate's gradient.
struct GateGradientTerms {
  std::vector<double> lm, balance, z;
  void clear() {
    std::fill(lm.begin(), lm.end(), 0.0);
    std::fill(balance.begin(), balance.end(), 0.0);
    std::fill(z.begin(), z.end(), 0.0);
  }
};

struct FeedForwardOutput {
  Variable y;
  Variable aux_loss;    // undefined for dense blocks
  Variable extra_loss;  // weighted terms added to the total as they are (the router z-loss); may be undefined
  LayerLoadStats stats;
};

class FeedForward {
 public:
  virtual ~FeedForward() = default;
  // x [S, h]: S / sequence_length sequences of consecutive tokens. `key` is this layer's random
  // stream for the micro-batch (MoE token selection).
  virtual FeedForwardOutput forward(const Variable& x, bool training, RngKey key, int64_t sequence_length) const = 0;
  // Matmul weights one token multiplies by (for model FLOPs): an MoE layer counts its gate and
  // top-k experts only.
  virtual int64_t active_matmul_weights() const = 0;
  // An MoE layer's expert bias for auxiliary-loss-free balancing (moe/router.h); nullptr: none.
  virtual std::vector<double>* expert_bias() { return nullptr; }
  // An MoE layer's gate-gradient terms (moe_router_diagnostics); nullptr: none.
  virtual GateGradientTerms* gate_gradient_terms() { return nullptr; }
  // An MoE layer's global-batch balancing fractions (global_aux_loss; moe/moe_layer.h); nullptr: none.
  virtual std::vector<double>* global_aux_fractions() { return nullptr; }
};

// Megatron's ParallelMLP: fc2(gelu(fc1(x))), fc1 [f,h] init N(0, std), fc2 [h,f] init N(0, out_std).
// With a tensor group of p ranks, fc1 is column-parallel (f/p rows each) and fc2 row-parallel.
class DenseMlp final : public FeedForward {
 public:
  DenseMlp(ParameterRegistry& params, const std::string& prefix, int64_t hidden, int64_t ffn, double std,
           double out_std, RngKey init_key, DType dtype, parallel::Communicator* tensor_group = nullptr);
  FeedForwardOutput forward(const Variable& x, bool training, RngKey key, int64_t sequence_length) const override;
  int64_t active_matmul_weights() const override {  // of the whole MLP, all tensor-parallel shards
    return (fc1_w_.value().numel() + fc2_w_.value().numel()) * (tensor_group_ ? tensor_group_->size() : 1);
  }

 private:
  Variable fc1_w_, fc1_b_, fc2_w_, fc2_b_;
  parallel::Communicator* tensor_group_;
};

// Registers this rank's part of `full` (tags.tp_split_dim / tp_blocks over the tensor group;
// the whole tensor when not split or without a group) and returns its Variable.
Variable add_tensor_parallel(ParameterRegistry& params, const std::string& name, const Tensor& full, ParamTags tags,
                             parallel::Communicator* tensor_group);

// Builds the feed-forward block of layer `layer` (0-based), registering its parameters under
// `prefix` ("layers.<l>.mlp.").
using FeedForwardFactory =
    std::function<std::unique_ptr<FeedForward>(ParameterRegistry& params, const std::string& prefix, int64_t layer)>;

}  // namespace mt::nn
