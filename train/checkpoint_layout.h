// How the parameters of one rank map onto a checkpoint's global tensors, which are the tensors a
// single process holds: every expert under its global id, every tensor-parallel weight merged to
// its full shape (parallel/shards.h). A checkpoint saved under one data / tensor / expert parallel
// layout therefore loads under any other, optimizer moments included.
//
// Saving gathers: rank 0's tensor-parallel group all-gathers its flat dense buffer (each member's
// shards), rank 0's expert-parallel group all-gathers its flat expert buffer (each member's
// experts); every other replica holds identical copies and sends nothing. Rank 0 writes.
// Loading: every rank reads the files and takes its part (its experts by global id, its shard).
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "autograd/parameters.h"
#include "parallel/communicator.h"
#include "parallel/process_groups.h"
#include "train/safetensors.h"

namespace mt::train {

struct CheckpointLayout {
  parallel::Communicator* tensor_parallel = nullptr;  // null: tensor-parallel size 1
  parallel::Communicator* expert_parallel = nullptr;  // null: expert-parallel size 1
  bool gathers_dense = true;                          // this rank belongs to rank 0's tensor-parallel group
  bool gathers_experts = true;                        // this rank belongs to rank 0's expert-parallel group
  bool writer = true;                                 // this rank writes the files (world rank 0)

  int tp_size() const { return tensor_parallel ? tensor_parallel->size() : 1; }
  int tp_rank() const { return tensor_parallel ? tensor_parallel->rank() : 0; }
  int ep_size() const { return expert_parallel ? expert_parallel->size() : 1; }
};

// The layout of `rank` in a job whose groups were made by make_process_groups(world, layout).
CheckpointLayout checkpoint_layout(const parallel::ParallelLayout& layout, const parallel::ProcessGroups& groups,
                                   int rank);

// Collective over the gathering groups (every rank calls it). On the writer: each global tensor,
// named prefix + its global name, built from flat(group), a flat buffer laid out as the registry's
// (the values, or one of AdamW's moments). On other ranks: empty.
std::vector<NamedTensor> gather_global_tensors(const ParameterRegistry& params, const CheckpointLayout& layout,
                                               const std::string& prefix,
                                               const std::function<Tensor(ParamGroup)>& flat);

// Names (prefix + global name) of every global tensor this rank's model belongs to, including the
// experts other ranks of its expert-parallel group hold.
std::set<std::string> global_tensor_names(const ParameterRegistry& params, const CheckpointLayout& layout,
                                          const std::string& prefix);

// The full shape of p's global tensor, and this rank's part of a global tensor of that shape.
Shape global_shape(const Parameter& p, const CheckpointLayout& layout);
Tensor local_part(const Parameter& p, const Tensor& global, const CheckpointLayout& layout);

}  // namespace mt::train
