// Router diagnostics no framework logs (issue 21), per MoE layer and step, from the gate weight's
// gradient split by loss term (nn::GateGradientTerms, filled in the backward with
// moe_router_diagnostics): each term's norm and the cosine between the LM term and the balancing
// term, the "interference" DeepSeek-V3 gives as its reason to drop the auxiliary loss (0 when
// either is 0: with moe_loss_coeff 0 exactly 0).
#pragma once

#include <map>
#include <vector>

#include "nn/feed_forward.h"
#include "parallel/communicator.h"

namespace mt::train {

// The step's per-layer loads over the whole global batch, the same under every layout: each
// layer's expert_counts summed over `data_parallel`, its per-micro-batch sums (dropped fraction,
// aux and z losses, entropy) averaged over it (so / micro-batches per rank = the global mean); one
// all-reduce (nullptr or one rank: nothing to do). The layers are the same on every rank (every
// micro-batch reports each MoE layer). The gate-gradient terms and the drop cost reduce apart.
void reduce_layer_loads(std::vector<nn::LayerLoadStats>& loads, parallel::Communicator* data_parallel);

struct GateGradientSummary {
  double lm = 0, balance = 0, z = 0, interference = 0;
};
// Norms and cosine of terms already summed over the ranks and scaled to the loss's gradient.
GateGradientSummary summarize_gate_gradients(const nn::GateGradientTerms& t);

// Every layer's terms summed over `data_parallel` and scaled by `scale` (1 / (dp x loss scale): the
// gradient of the loss averaged over the data-parallel ranks), summarised into `loads` (the step's
// per-layer stats, matched by layer), then cleared for the next step.
void record_gate_gradients(const std::map<int64_t, nn::GateGradientTerms*>& terms,
                           std::vector<nn::LayerLoadStats>& loads, parallel::Communicator* data_parallel, double scale);

}  // namespace mt::train
