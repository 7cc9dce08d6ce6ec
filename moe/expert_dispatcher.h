// How an MoE layer's dispatched rows reach the experts that own them, and their outputs come back
// (Megatron-Core's token dispatchers, after the local permutation of moe/moe_ops.h):
//   LocalDispatcher     every expert lives on this rank: the expert-major rows are cut into one
//                       block per expert, and the experts' outputs concatenated back.
//   AllToAllDispatcher  the experts are spread over an expert-parallel group: each rank sends every
//                       other rank the rows of its experts (all_to_all_v), runs its local experts
//                       over the rows of all sources, and sends the outputs back the same way.
// Both are differentiable (the all_to_all_v backward is the reverse exchange).
#pragma once

#include <memory>
#include <vector>

#include "autograd/variable.h"
#include "parallel/communicator.h"

namespace mt::moe {

class ExpertDispatcher {
 public:
  virtual ~ExpertDispatcher() = default;
  // rows [N, h], expert-major over all E experts (counts[e] rows of expert e) -> the input rows of
  // each local expert (blocks[l] for local expert l, [n_l, h]).
  virtual std::vector<Variable> to_experts(const Variable& rows, const std::vector<int64_t>& counts) = 0;
  // The local experts' outputs (blocks[l], [n_l, h]) -> [N, h] in the order of to_experts' rows.
  virtual Variable from_experts(const std::vector<Variable>& outputs) = 0;
};

// One dispatcher per layer call: `group` null (all experts here) or the layer's expert group
// holding `local_experts` experts per rank.
std::unique_ptr<ExpertDispatcher> make_expert_dispatcher(parallel::Communicator* group, int64_t local_experts,
                                                         int64_t hidden);

}  // namespace mt::moe
