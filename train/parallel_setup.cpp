#include "train/parallel_setup.h"

#include "parallel/device_routed_communicator.h"
#include "parallel/watchdog.h"
#include "runtime/ops.h"
#if defined(MOETRAIN_HAVE_NCCL) && defined(MOETRAIN_HAVE_CUDA)
#include "parallel/nccl.h"
#include "runtime/device.h"
#endif

namespace mt::train {

ParallelSetup make_parallel_setup(const TrainConfig& cfg, parallel::Communicator& world) {
  validate(cfg, world.size());
  // Every collective from here on waits at most this long for its peers (parallel/watchdog.h).
  parallel::set_collective_timeout(cfg.distributed_timeout_minutes * 60);
  ParallelSetup s;
  s.data_parallel = data_parallel_size(cfg, world.size());
  s.layout.world_size = world.size();
  s.layout.tensor_parallel = int(cfg.tensor_model_parallel_size);
  s.layout.expert_parallel = int(cfg.moe_expert_parallel_size);
  s.layout.expert_tensor_parallel = s.layout.tensor_parallel > 1;
  parallel::Communicator* group_world = &world;
#if defined(MOETRAIN_HAVE_NCCL) && defined(MOETRAIN_HAVE_CUDA)
  if (cfg.device == "cuda" && world.size() > 1) {
    (void)Tensor::zeros({1}, DType::F32, Device::cuda());  // the first CUDA use selects this rank's GPU
    // NCCL wants a GPU of its own per rank: when a node runs more ranks than it has GPUs, every
    // rank stays with MPI (which stages GPU tensors through host memory). A collective decision.
    Tensor shared =
        Tensor::from_vector(std::vector<double>{local_rank_from_launcher() >= cuda_device_count() ? 1.0 : 0.0}, {1});
    world.all_reduce(shared, parallel::ReduceKind::Max);
    if (shared.item() == 0.0) {
      std::shared_ptr<parallel::Communicator> host(&world, [](parallel::Communicator*) {});  // owned by world()
      s.routed_world = parallel::make_device_routed_communicator(
          host, parallel::make_nccl_communicator(world, selected_cuda_device()));
      s.routed_world->set_group_name("world");  // the NCCL world's name in timeout messages
      group_world = s.routed_world.get();
    }
  }
#endif
  s.groups = parallel::make_process_groups(*group_world, s.layout);
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
