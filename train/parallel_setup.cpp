#include "train/parallel_setup.h"

#include "runtime/ops.h"

namespace mt::train {

ParallelSetup make_parallel_setup(const TrainConfig& cfg, parallel::Communicator& world) {
  validate(cfg, world.size());
  ParallelSetup s;
  s.data_parallel = data_parallel_size(cfg, world.size());
  s.layout.world_size = world.size();
  s.layout.tensor_parallel = int(cfg.tensor_model_parallel_size);
  s.layout.expert_parallel = int(cfg.moe_expert_parallel_size);
  s.layout.expert_tensor_parallel = s.layout.tensor_parallel > 1;
  s.groups = parallel::make_process_groups(world, s.layout);
  if (s.layout.expert_parallel > 1) s.expert_group = s.groups.expert_parallel.get();
  if (s.layout.tensor_parallel > 1) s.tensor_group = s.groups.tensor_parallel.get();
  return s;
}

void synchronize_gradients(ParameterRegistry& params, const ParallelSetup& setup) {
  if (setup.layout.world_size == 1) return;
  Tensor dense = params.flat_grads(ParamGroup::Dense);
  if (dense.defined()) setup.groups.data_parallel->all_reduce(dense, parallel::ReduceKind::Avg);
  Tensor experts = params.flat_grads(ParamGroup::Expert);
  if (experts.defined()) {
    setup.groups.expert_data_parallel->all_reduce(experts, parallel::ReduceKind::Sum);
    ops::scale_(experts, 1.0 / double(setup.data_parallel));
  }
}

}  // namespace mt::train
