// Tensor-parallel shards of a full tensor. A weight split over `parts` ranks along dimension `dim`
// is viewed there as [blocks, parts, chunk]: rank i holds chunk i of every block, so a fused
// weight such as attention's [h, 3h] QKV projection (blocks = 3: q, k, v) gives each rank its own
// heads' q, k and v. With blocks = 1 this is the plain contiguous split.
//   shard_of(full [.., blocks*parts*chunk, ..], i) -> [.., blocks*chunk, ..]   (a copy)
//   merge_shards(shards[parts] of [.., blocks*chunk, ..]) -> full              (a copy)
// merge_shards(shard_of(full, d, b, i, p) for i < p) == full, for any dtype. Checkpoints store the
// full tensor, so a run saved with one tensor-parallel size loads with another.
#pragma once

#include <vector>

#include "runtime/tensor.h"

namespace mt::parallel {

struct ShardSpec {
  int dim = -1;    // split dimension; -1: not split (every rank holds the full tensor)
  int blocks = 1;  // equal blocks along `dim`, each split over the ranks
};

Tensor shard_of(const Tensor& full, ShardSpec spec, int index, int parts);
Tensor merge_shards(const std::vector<Tensor>& shards, ShardSpec spec);

}  // namespace mt::parallel
