// The global-batch balancing loss (moe_router_load_balancing_type: global_aux_loss; docs/math/moe.md
// §3.4): GShard's l_aux with the fractions ce_e of the whole global batch (every micro-batch of the
// step on every data-parallel rank) instead of the micro-batch's own. Each micro-batch's loss is
//   l = lambda sum_e mean_{t in micro-batch} P[t,e] ce_e^global,
// so the step's loss (averaged over micro-batches and ranks) is lambda sum_e me_e ce_e over the
// global batch, whatever the layout. The fractions must be known before the first micro-batch's
// backward: a forward without gradient of each of this rank's micro-batches of the step (the
// training's routing: same parameters, dropout masks and routing keys) counts every MoE layer's
// balancing choices (first choices for k <= 2, all k for k >= 3, before dropping); the counts are
// summed over the data-parallel group and divided by the global batch's tokens. One forward per
// micro-batch more when the global batch holds more than one micro-batch; with one it is aux_loss.
#pragma once

#include <cstdint>
#include <vector>

#include "nn/gpt.h"
#include "parallel/communicator.h"

namespace mt::train {

// tokens [B, L] of each of this rank's micro-batches and their forward modes (training, first
// sample); collective over `data_parallel` (nullptr: this rank alone). Sets every MoE layer's
// global_aux_fractions (nn::GptModel::global_aux_fractions) to the global batch's fractions.
void set_global_aux_fractions(nn::GptModel& model, const std::vector<Tensor>& tokens,
                              const std::vector<nn::ForwardMode>& modes, parallel::Communicator* data_parallel);

// Back to each micro-batch's own fractions (evaluation, the next step's counting pass).
void clear_global_aux_fractions(nn::GptModel& model);

}  // namespace mt::train
