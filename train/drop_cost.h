// The drop cost (issue 21, moe_router_diagnostics): what capacity dropping costs the LM loss. For
// each MoE layer l, a sample of the micro-batch's assignments that layer l dropped (at most
// `samples` of them, evenly spaced: moe::sample_dropped) is re-run through the experts they chose
// (moe::with_rescued: as if the experts had room), everything else as in training (same dropout
// masks, same routing keys; the layers above l route their new inputs as they would), without
// gradient. The layer's cost is the LM loss's change summed over the micro-batch's positions,
//   cost_sum = (L(as trained) - L(sample rescued at l)) x loss positions,
// and the sample's size; the log shows cost_sum / rescued per layer: nats per dropped token (> 0:
// dropping costs loss). One forward as trained plus one per MoE layer that dropped anything
// anywhere in the data-parallel group; dropless routing drops nothing, so its cost is exactly 0.
#pragma once

#include <cstdint>
#include <vector>

#include "nn/gpt.h"
#include "parallel/communicator.h"

namespace mt::train {

// Per MoE layer of the model (has_drop_cost set, drop_cost_sum and drop_cost_tokens; the rest
// empty), summed over the micro-batches the `data_parallel` group's ranks measured at this call
// (collective over it: every rank calls it for its own micro-batch; nullptr: this rank alone).
// tokens, labels [B, L], loss_mask [B, L] or undefined; `mode` the micro-batch's training forward.
std::vector<nn::LayerLoadStats> measure_drop_cost(const nn::GptModel& model, const Tensor& tokens, const Tensor& labels,
                                                  const Tensor& loss_mask, nn::ForwardMode mode, int64_t samples,
                                                  parallel::Communicator* data_parallel);

}  // namespace mt::train
