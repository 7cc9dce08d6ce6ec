// The routing decisions of DeepSpeed-MoE's TopKGate (deepspeed/moe/sharded_moe.py: top1gating,
// top2gating, topkgating; docs/moe.md),
// computed on the host from the gate's probabilities, without any S x E x C one-hot tensor:
// for every (token, choice) the expert and the slot in that expert's buffer, or "dropped".
//   top-1: expert = argmax P; over capacity, Random Token Selection (use_rts) keeps a uniformly
//          random subset (else the first C in token order); slots in token order among the kept.
//   top-2: second expert = argmax of the other logits (+ Gumbel noise with top2_2nd_expert_sampling,
//          training only - the corrected behaviour); first choices take the first slots of every
//          expert, second choices follow; dropping by position.
//   top-k: the k largest logits; over capacity each expert keeps its C most probable tokens (the
//          intended "probs" policy; DeepSpeed HEAD scores with raw logits, a known bug).
// capacity C = max(ceil(k * cf * S / E), min_capacity); without dropping, C = max_e(assigned_e).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/rng.h"
#include "runtime/tensor.h"

namespace mt::moe {

struct RouterConfig {
  int64_t num_experts = 8;
  int64_t topk = 1;
  double capacity_factor = 1.0, eval_capacity_factor = 1.0;
  int64_t min_capacity = 4;
  bool drop_tokens = true;
  bool use_rts = true;
  bool top2_2nd_expert_sampling = true;
  // "None", "Jitter" (the layer multiplies the gate's input by U(1-0.01, 1+0.01), training only)
  // or "RSample" (top-1, training only: expert = argmax(logits + Gumbel noise), a sample from P;
  // the combine weights and aux loss still use the clean P).
  std::string noisy_gate_policy = "None";
  // Auxiliary-loss-free balancing (DeepSeek-V3): a per-expert bias added to the probabilities for
  // the choice only: every k takes the top-k of P + b (ties to the lower index), no noise; the
  // combine weights and the balancing loss still use P. Empty: no bias.
  std::vector<double> expert_bias;
  // Group-limited routing (DeepSeek-V3; moe_router_num_groups, moe_router_group_topk): the E
  // experts form num_groups contiguous groups; a token first keeps the group_topk groups whose
  // k / group_topk largest scores (P + b) sum highest, then takes the top-k of P + b inside them
  // (no noise, any k). 0: off.
  int64_t num_groups = 0, group_topk = 0;
  // "softmax" (P = softmax(z), DeepSpeed's choices above) or "sigmoid" (P = sigmoid(z) per expert,
  // DeepSeek-V3; the choice is the plain top-k of P + b for every k, no noise).
  std::string score_function = "softmax";
};

struct Routing {
  int64_t tokens = 0, experts = 0, k = 0, capacity = 0;
  std::vector<int32_t> expert;       // [tokens * k]: chosen expert of (token, choice)
  std::vector<int32_t> slot;         // [tokens * k]: slot in the expert's buffer, -1 when dropped
  std::vector<int64_t> assigned;     // [experts]: assignments before dropping (DeepSpeed's exp_counts)
  std::vector<int64_t> kept;         // [experts]: assignments that got a slot
  std::vector<double> aux_fraction;  // [experts]: ce_e of the load-balancing loss
  double aux_scale = 0;              // l_aux = aux_scale * sum_e me_e * ce_e
  int64_t num_kept() const;
  double dropped_fraction() const;
};

// probs, logits: [S, E] (f32 or f64, CPU). `training` selects the capacity factor and the noise
// (second-expert sampling); `key` seeds RTS and the Gumbel noise.
Routing route(const Tensor& probs, const Tensor& logits, const RouterConfig& cfg, bool training, RngKey key);

// The drop cost's sample (train/drop_cost.h): the dropped assignments (index token * k + choice)
// of r, at most `limit` of them, spread evenly over the dropped ones in assignment order.
std::vector<size_t> sample_dropped(const Routing& r, int64_t limit);

// r with the given dropped assignments kept, as if their experts had room: each takes the next
// slot after its expert's kept rows (the capacity grows to fit), so its token goes through its
// chosen expert and its combine weight counts (renormalised with the token's other kept choices).
Routing with_rescued(const Routing& r, const std::vector<size_t>& assignments);

// DeepSpeed's capacity formula (top-1 asserts S >= min_capacity; we clamp instead of failing).
int64_t expert_capacity(int64_t tokens, int64_t experts, int64_t k, double capacity_factor, int64_t min_capacity);

}  // namespace mt::moe
