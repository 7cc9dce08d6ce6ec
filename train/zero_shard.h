// ZeRO's partition of one parameter group's flat buffers over the ranks that hold identical
// copies of them (DeepSpeed's optimizer-state partitioning):
//   dense parameters   over the data-parallel group
//   expert parameters  over the expert-data-parallel group (the replicas of the same experts)
// Each rank owns one contiguous chunk [begin, end) of the flat buffer of `length` elements; the
// chunks are `chunk` long (the last rank's may hold fewer real elements, or none) and cover
// [0, size * chunk) in rank order. ZeRO stage 1 keeps AdamW's moments for the owned chunk only,
// updates that chunk of the weights and all-gathers the rest (train/optimizer.h).
#pragma once

#include <cstdint>

#include "parallel/communicator.h"
#include "runtime/tensor.h"

namespace mt::train {

struct FlatShard {
  int64_t length = 0;                       // the flat buffer's elements
  int64_t chunk = 0;                        // elements per rank (size * chunk >= length)
  int64_t begin = 0, end = 0;               // this rank's elements [begin, end), end <= length
  parallel::Communicator* group = nullptr;  // the owners, in rank order; nullptr: this rank alone
  int64_t bucket = 500000000;               // all_gather moves at most this many elements at a time

  // The partition of `length` elements over `group` (nullptr or one rank: the whole buffer).
  static FlatShard of(int64_t length, parallel::Communicator* group, int64_t bucket = 500000000);
  int64_t owned() const { return end - begin; }
  bool partitioned() const { return group && group->size() > 1; }

  // flat [length]: every rank's owned chunk -> every rank (collective over the group), in pieces of
  // bucket / size elements of each chunk (the same count of calls on every rank).
  void all_gather(Tensor& flat) const;
  // mine [owned()] of every rank -> the whole [length] tensor, on every rank (collective: all_gather).
  Tensor gather(const Tensor& mine) const;
};

}  // namespace mt::train
