// The differentiable pieces of an MoE layer, each with its hand-written backward, all driven by
// a Routing (moe/router.h) that is fixed during the forward and backward of one call:
//   gate_weights   P [S,E] -> w [S,k]: the kept choices' probabilities (renormalised over the
//                  kept choices for k >= 2, as DeepSpeed's top-2/top-k; raw for top-1), times a
//                  scaling factor; with GateWeightForm::normalize false never renormalised
//   aux_loss       P [S,E] -> l_aux = aux_scale * sum_e mean_t(P[t,e]) * ce_e (ce: the micro-batch's
//                  choices, or given: the global batch's)
//   seq_aux_loss   P [S,E], S = B sequences of T tokens -> l = mean_b sum_e f_be mean_t P[b,t,e],
//                  f_be = E/(kT) x the sequence's choices of e (all k, before dropping) (DeepSeek-V2/V3)
//   router_z_loss  z [S,E] (gate logits) -> l_z = mean_t (logsumexp_e z[t,e])^2 (ST-MoE; no routing)
//   sigmoid_scores z [S,E] -> s = 1 / (1 + exp(-z)) (the sigmoid score function, DeepSeek-V3)
//   normalize_rows s [S,E] -> s / (sum_e s + 1e-20) (sigmoid scores as a distribution, for the
//                  balancing losses and the entropy)
//   dispatch       x [S,h] -> rows [N,h]: the kept assignments' tokens, expert-major, by slot
//   combine        rows [N,h], w [S,k] -> y [S,h]: y_t = sum_j w[t,j] rows[pos(t,j)]
//                  (a dropped assignment contributes 0; the residual stream carries the token)
//   split_rows / concat_rows: the per-expert row blocks of the dispatched buffer
// No S x E x C one-hot tensor exists anywhere: everything is index arithmetic.
#pragma once

#include <memory>
#include <vector>

#include "autograd/variable.h"
#include "moe/router.h"

namespace mt::moe {

// Row of assignment a in the dispatched buffer (expert-major, then slot), or -1 when dropped.
std::vector<int64_t> dispatch_positions(const Routing& r);
// Rows per expert in the dispatched buffer (= r.kept).
std::vector<int64_t> rows_per_expert(const Routing& r);

// The routing as i64 index tensors on the data's device, built once per layer call (one host to
// device copy) and shared by dispatch and combine:
//   pos [S,k] row of assignment (t,j) in the dispatched buffer or -1; token [N] and assign [N]
//   the token and assignment of each row; owner [S*k] the token of each assignment.
struct RowIndex {
  Tensor pos, token, assign, owner;
  RowIndex(const Routing& r, Device device);
};

// How the kept choices' scores become combine weights: normalize (k >= 2 only: divided by their
// sum; false: the raw top-k, Megatron-Core's moe_router_pre_softmax), then times scale
// (moe_router_topk_scaling_factor).
struct GateWeightForm {
  bool normalize = true;
  double scale = 1.0;
};
Variable gate_weights(const Variable& probs, const Routing& r, GateWeightForm form = {});
Variable aux_loss(const Variable& probs, const Routing& r);
// The same with given fractions ce [E] (the global batch's: moe_router_load_balancing_type
// global_aux_loss): l = scale * sum_e mean_t(P[t,e]) * ce_e; backward dP[t,e] += dl * scale * ce_e / S
Variable aux_loss(const Variable& probs, const std::vector<double>& fractions, double scale);
// backward: dP[b,t,e] += dl * f_be / (B T)
Variable seq_aux_loss(const Variable& probs, const Routing& r, int64_t sequence_length);
// backward: dz[t,e] += dl * (2/S) * lse_t * softmax(z)[t,e]
Variable router_z_loss(const Variable& logits);
// backward: dz += ds * s (1 - s)
Variable sigmoid_scores(const Variable& logits);
// backward: ds[t,e] += (dy[t,e] - sum_e' dy[t,e'] y[t,e']) / d_t,  d_t = sum_e s[t,e] + 1e-20
Variable normalize_rows(const Variable& scores);
// `index` (optional): the routing's RowIndex on x's / rows' device, to share it between the two.
Variable dispatch(const Variable& x, const Routing& r, std::shared_ptr<const RowIndex> index = nullptr);
Variable combine(const Variable& rows, const Variable& weights, const Routing& r,
                 std::shared_ptr<const RowIndex> index = nullptr);

// y[t,:] = x[t,:] * coeffs[t, col]  (x [S,h], coeffs [S,m]): residual MoE's per-token mixing.
// backward: dx[t] += coeffs[t,col] dy[t];  dcoeffs[t,col] += <dy[t], x[t]>
Variable scale_rows(const Variable& x, const Variable& coeffs, int64_t col);

std::vector<Variable> split_rows(const Variable& x, const std::vector<int64_t>& sizes);
Variable concat_rows(const std::vector<Variable>& parts, int64_t cols);

}  // namespace mt::moe
