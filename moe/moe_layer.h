// A DeepSpeed-MoE layer replacing a transformer block's MLP (deepspeed/moe/layer.py MoE,
// sharded_moe.py MOELayer; docs/moe.md), in four steps: route -> dispatch -> experts -> combine:
//   logits = x Wg^T (gate Linear(h, E), no bias), P = softmax(logits), routing (moe/router.h),
//   rows = dispatch(x) expert-major, each expert e: fc2_e(gelu(fc1_e(rows_e))), y = combine(rows, w)
//   residual MoE (mlp_type residual): y = a * y + b * MLP(x), [a, b] = softmax(Linear(h, 2)(x))
// Parameters: the gate (dense, initialised uniform(-1/sqrt(h), 1/sqrt(h)) as PyTorch's Linear),
// per expert fc1 [f,h], fc1 bias, fc2 [h,f] (init std / sqrt(2L)), fc2 bias - tagged expert
// (layer, global id). All experts start as copies of one initialisation, as in DeepSpeed; the
// output bias fc2 is applied (DeepSpeed after July 2023; the paper-era code dropped it).
// With an expert group of ep ranks each rank registers only its E/ep experts (names keep the
// global expert id); the result equals the single-rank layer on the same tokens.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "autograd/parameters.h"
#include "moe/moe_ops.h"
#include "moe/router.h"
#include "nn/feed_forward.h"
#include "parallel/communicator.h"

namespace mt::moe {

struct MoeLayerConfig {
  RouterConfig router;
  int64_t hidden = 64, ffn = 256;  // ffn: each expert's width (moe_ffn_hidden_size, else the dense MLP's)
  // DeepSeek-MoE's shared expert (moe_shared_expert_intermediate_size): an always-on MLP of this
  // width on every token, added to the routed output (no learned mix); 0: none.
  int64_t shared_ffn = 0;
  bool residual = false;
  double init_std = 0.02, output_init_std = 0.02;
  uint64_t seed = 1234;
  // How the kept choices' scores become combine weights (moe/moe_ops.h GateWeightForm):
  // moe_router_pre_softmax (raw top-k, never renormalised), moe_router_topk_scaling_factor.
  GateWeightForm weights;
  // The balancing loss out.aux_loss holds (moe_router_load_balancing_type): "aux_loss" (DeepSpeed's
  // micro-batch loss), "seq_aux_loss" (per sequence, averaged: DeepSeek-V2/V3), "global_aux_loss"
  // (aux_loss with the global batch's fractions, which the trainer sets: global_aux_fractions) or
  // "none" (0).
  std::string balancing = "aux_loss";
  // Auxiliary-loss-free balancing (moe_router_enable_expert_bias): the router's choice adds a
  // per-expert bias (moe/router.h), state the trainer updates after each step (starts at 0).
  bool expert_bias = false;
  // moe_router_diagnostics: split the gate's gradient by loss term (nn::GateGradientTerms)
  bool diagnostics = false;
  // ST-MoE's router z-loss weight (moe_z_loss_coeff): 0 leaves it out (nothing computed).
  double z_loss_coeff = 0;
  int64_t layer = 0;  // index of the transformer layer (for parameter names, tags, random streams)
  DType dtype = DType::F32;
  // Expert parallelism: the group of ep ranks that share this layer's experts (nullptr: one rank
  // holds them all). Rank i of the group holds experts [i*E/ep, (i+1)*E/ep); every rank routes its
  // own tokens over all E experts and exchanges the dispatched rows with all_to_all_v.
  parallel::Communicator* expert_group = nullptr;
};

struct MoeOutput {
  Variable y;          // [S, h]
  Variable aux_loss;   // scalar: this layer's balancing loss (cfg.balancing; 0 for "none")
  Variable z_loss;     // scalar l_z of this layer (mean squared logsumexp of the gate logits), when on
  Routing routing;     // the decisions (for metrics: loads, dropped fraction)
  double entropy = 0;  // mean router entropy over tokens
};

class MoeLayer {
 public:
  MoeLayer(ParameterRegistry& params, const std::string& prefix, const MoeLayerConfig& cfg);
  // x [S, h]: S / sequence_length sequences of sequence_length consecutive tokens (0: one
  // sequence; the sequence-level balancing loss needs them). `key` seeds RTS and second-expert
  // sampling. With `fixed` the routing is not recomputed (gradchecks hold it constant while
  // perturbing inputs); in the recompute of a checkpointed region it is the region's forward's
  // (autograd/checkpoint.h).
  MoeOutput forward(const Variable& x, bool training, RngKey key, const Routing* fixed = nullptr,
                    int64_t sequence_length = 0) const;
  const MoeLayerConfig& config() const { return cfg_; }
  // The expert bias [E] (cfg.expert_bias), nullptr without one: the trainer updates it.
  std::vector<double>* expert_bias() { return cfg_.expert_bias ? &expert_bias_ : nullptr; }
  nn::GateGradientTerms* gate_gradient_terms() { return gate_terms_.get(); }
  // global_aux_loss: the fractions ce [E] of the global batch the loss uses (set by the trainer
  // for a step; empty: this micro-batch's own, as aux_loss); nullptr for the other losses.
  std::vector<double>* global_aux_fractions() {
    return cfg_.balancing == "global_aux_loss" ? &global_fractions_ : nullptr;
  }
  // Gate + top-k experts (+ the residual MLP and coefficient): the matmul weights per token.
  int64_t active_matmul_weights() const;

 private:
  // Each local expert's MLP over its rows (blocks[l] feeds local expert l): fc2(gelu(fc1(rows))).
  // The balancing loss cfg_.balancing names, over probs [S,E] under routing r.
  Variable balancing_loss(const Variable& probs, const Routing& r, int64_t sequence_length) const;
  std::vector<Variable> run_local_experts(const std::vector<Variable>& blocks) const;

  MoeLayerConfig cfg_;
  int64_t first_local_expert_ = 0, local_experts_ = 0;
  Variable gate_w_, coeff_w_, coeff_b_, mlp_fc1_w_, mlp_fc1_b_, mlp_fc2_w_, mlp_fc2_b_;
  std::vector<double> expert_bias_;                                     // [E] when cfg_.expert_bias
  std::vector<double> global_fractions_;                                // [E] or empty (global_aux_loss)
  std::shared_ptr<nn::GateGradientTerms> gate_terms_;                   // when cfg_.diagnostics
  Variable shared_fc1_w_, shared_fc1_b_, shared_fc2_w_, shared_fc2_b_;  // the shared expert
  std::vector<Variable> fc1_w_, fc1_b_, fc2_w_, fc2_b_;
};

}  // namespace mt::moe
