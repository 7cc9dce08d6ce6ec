// The parallel layout of a training job, from its configuration and the processes mpirun started:
// tensor-parallel groups of tp ranks (they split the dense weights and see the same samples),
// dp = ranks / tp data-parallel ranks (each takes its slice of every global batch), and with
// expert parallelism groups of ep data-parallel ranks sharing one copy of the experts. MoE layers
// run whole on every tensor-parallel rank, so expert groups are cut from each data-parallel group
// (process_groups.h's "expert tensor parallel" layout when tp > 1). Used by the trainer and by
// `moetrain bench train`.
#pragma once

#include <memory>

#include "autograd/parameters.h"
#include "parallel/process_groups.h"
#include "train/config.h"

namespace mt::train {

struct ParallelSetup {
  // With device cuda on several ranks (and NCCL built): the world whose groups send GPU tensors
  // over NCCL and host tensors over MPI (parallel/device_routed_communicator.h). Null otherwise:
  // the groups are split from the MPI world, which stages GPU tensors through host memory.
  std::shared_ptr<parallel::Communicator> routed_world;
  parallel::ParallelLayout layout;
  parallel::ProcessGroups groups;
  int64_t data_parallel = 1;
  parallel::Communicator* expert_group = nullptr;  // null when ep = 1
  parallel::Communicator* tensor_group = nullptr;  // null when tp = 1
  int data_parallel_rank() const { return groups.data_parallel->rank(); }
};

// Validates the configuration for world.size() ranks (one clear error on every rank), sets the
// collective timeout (distributed_timeout_minutes) and forms the groups. Collective over `world`.
ParallelSetup make_parallel_setup(const TrainConfig& cfg, parallel::Communicator& world);

// After the backward of one step: dense gradients averaged over the data-parallel group; expert
// gradients summed over each expert's replicas (its expert-data-parallel group) and divided by
// the data-parallel size, as DeepSpeed does (each expert already saw its whole expert group's
// tokens, so this is the same global-batch mean as for dense weights).
void synchronize_gradients(ParameterRegistry& params, const ParallelSetup& setup);

}  // namespace mt::train
