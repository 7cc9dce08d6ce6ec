// Auxiliary-loss-free balancing (DeepSeek-V3; Megatron-Core's moe_router_enable_expert_bias): each
// MoE layer's router adds a per-expert bias b to the scores when it chooses experts (moe/router.h),
// and after every applied optimizer step
//   b_e += rate * sign(mean_e' load_e' - load_e)
// with load_e the assignments (all k choices, before dropping) of expert e over the whole global
// batch: this rank's micro-batches summed, then all-reduced over the data-parallel group
// (reduce_layer_loads, train/router_diagnostics.h), so every rank computes the same bias under every layout. The bias
// has no gradient and is kept in the checkpoint (meta.json "expert_bias").
#pragma once

#include <map>
#include <vector>

#include "nn/feed_forward.h"
#include "parallel/communicator.h"

namespace mt::train {

// biases: by MoE layer (nn::GptModel::expert_biases); loads: the step's per-layer expert counts
// over the global batch (reduce_layer_loads, train/router_diagnostics.h).
void update_expert_biases(const std::map<int64_t, std::vector<double>*>& biases,
                          const std::vector<nn::LayerLoadStats>& loads, double rate);

}  // namespace mt::train
