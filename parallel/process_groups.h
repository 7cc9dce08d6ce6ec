// Which ranks talk to which: the tensor-, data-, expert- and expert-data-parallel groups of a
// job, following Megatron's rank order (tensor-parallel ranks innermost and contiguous, then data,
// then pipeline stages outermost) and DeepSpeed-MoE's expert groups (deepspeed/utils/groups.py,
// _create_expert_and_data_parallel; docs/parallel.md).
//
// With W ranks, tp tensor-parallel, pp pipeline stages and ep expert-parallel:
//   Q = W / pp ranks per stage, D = W / (tp * pp) data-parallel replicas of the dense weights.
//   Expert layout "E + D" (default): expert-parallel groups are contiguous blocks of ep ranks; the
//     expert-data-parallel group of r holds the ranks at the same position in every block of r's
//     stage (size Q / ep). Example W = 16, ep = 2: EP [0,1],[2,3],..; EDP [0,2,..,14],[1,3,..,15].
//   "D + E" (data_before_expert): the EDP groups are the contiguous blocks of q = Q / ep ranks and
//     the EP groups are strided by q.
//   Expert tensor parallelism (experts sliced like dense MLPs): each data-parallel group is cut
//     into consecutive chunks of ep ranks (the EP groups); the m-th members of the chunks form an
//     EDP group (size D / ep).
// Every group is listed in the order its members take ranks inside the group's communicator.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"

namespace mt::parallel {

struct ParallelLayout {
  int world_size = 1;
  int tensor_parallel = 1;              // --tensor-model-parallel-size
  int pipeline_parallel = 1;            // --pipeline-model-parallel-size
  int expert_parallel = 1;              // --moe-expert-parallel-size
  bool expert_tensor_parallel = false;  // --enable-expert-tensor-parallelism
  bool data_before_expert = false;      // DeepSpeed use_data_before_expert_parallelism

  int ranks_per_stage() const { return world_size / pipeline_parallel; }
  int data_parallel() const { return world_size / (tensor_parallel * pipeline_parallel); }
  // Size of the expert-data-parallel groups (replicas of one expert's weights).
  int expert_data_parallel() const;
  // One line, e.g. "world 8 = tp 2 x dp 4 x pp 1, ep 2 (E + D)".
  std::string describe() const;
};

// Throws mt::Error naming the setting that does not divide (and what would) when the sizes do not
// fit together. Checked before any group is formed, identically on every rank.
void validate(const ParallelLayout& layout);

// The members of `rank`'s group of each kind, in group order. The layout must be valid.
std::vector<int> tensor_parallel_group(const ParallelLayout& layout, int rank);
std::vector<int> data_parallel_group(const ParallelLayout& layout, int rank);
std::vector<int> expert_parallel_group(const ParallelLayout& layout, int rank);
std::vector<int> expert_data_parallel_group(const ParallelLayout& layout, int rank);

// The communicators of this process's groups, split from `world` (collective over world).
struct ProcessGroups {
  ParallelLayout layout;
  std::unique_ptr<Communicator> tensor_parallel;
  std::unique_ptr<Communicator> data_parallel;
  std::unique_ptr<Communicator> expert_parallel;
  std::unique_ptr<Communicator> expert_data_parallel;
};
ProcessGroups make_process_groups(Communicator& world, ParallelLayout layout);

}  // namespace mt::parallel
