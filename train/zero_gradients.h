// ZeRO stage 2: gradients reduced into shards during the backward, so that no rank ever holds the
// whole gradient. The registry keeps per-parameter gradients (GradStorage::PerParameter); the
// parameters of each group are cut into buckets, contiguous ranges of the group's flat layout
// taken from its end (the last layers first: the backward's order), each within one layer and of
// at most reduce_bucket_size elements (a single larger parameter is a bucket of its own); the few
// parameters outside the layers (embeddings, final LayerNorm) are buckets of their own. When the
// backward of a bucket's layer has run (autograd/layer_boundary.h), its gradients are copied into
// a staging buffer and released (a bucket of one parameter is reduced in its own gradient), and
// each part of the bucket inside rank r's shard (train/zero_shard.h) is reduced to rank r, which
// adds it / data_parallel into its shard's gradient. The buckets outside the layers go when the
// backward ends (finish_backward). Each micro-batch is reduced this way (as DeepSpeed's stage 2),
// its sum accumulated in the shards.
//
// Collective order: the buckets and the layer marks are the same on every rank, so every rank
// reduces the same buckets at the same point of its backward, dense buckets before expert ones.
//
// Memory per rank: the shards' gradients (1/N of each group), one staging buffer of the largest
// bucket of several parameters, and the gradients not yet reduced: those of the layer running its
// backward, plus the embeddings' and the final LayerNorm's (complete only at the end).
#pragma once

#include <vector>

#include "autograd/layer_boundary.h"
#include "train/held_gradients.h"
#include "train/zero_shard.h"

namespace mt::train {

class ZeroGradientReducer final : public LayerBackwardListener {
 public:
  // shards: the optimizer's partition of each group (AdamW::shard); parameter_layers: per registry
  // parameter, the layer whose backward completes its gradient (-1: the end of the backward);
  // data_parallel: what the summed gradients are divided by (the loss is a mean over the
  // data-parallel ranks, as synchronize_gradients' all-reduce).
  ZeroGradientReducer(ParameterRegistry& params, const FlatShard (&shards)[kNumParamGroups],
                      std::vector<int64_t> parameter_layers, int64_t bucket_elements, int data_parallel);

  void zero();                                       // a step starts: the shards' gradients to 0
  void layer_backward_done(int64_t layer) override;  // reduces the buckets this layer completes
  void finish_backward();                            // after each micro-batch's backward: the rest
  HeldGradients held() const;                        // the shards' gradients
  int64_t largest_bucket() const { return largest_bucket_; }
  int64_t staging_elements() const { return largest_staging_; }  // the largest bucket of several parameters
  size_t buckets() const { return buckets_.size(); }

 private:
  struct Bucket {
    ParamGroup group = ParamGroup::Dense;
    int64_t lo = 0, hi = 0;      // the range of the group's flat layout (padding included)
    std::vector<size_t> params;  // registry indices
    int64_t after_layer = -1;    // the layer of its parameters; -1: the end of the backward
    bool reduced = false;
  };
  void reduce(Bucket& b);
  ParameterRegistry& params_;
  FlatShard shards_[kNumParamGroups];
  int data_parallel_;
  std::vector<Bucket> buckets_;
  int64_t largest_bucket_ = 0, largest_staging_ = 0;
  Tensor grads_[kNumParamGroups];  // [owned] per group
  Tensor staging_;                 // [largest_staging_], made on first use (partitioned groups only)
};

// How ZeroGradientReducer cuts one group into buckets (also the memory plan's): the group's
// parameters in flat order with their padded sizes and layers -> buckets as [first, last) index
// ranges, the last parameters' bucket first.
struct IndexRange {
  size_t first = 0, last = 0;
};
std::vector<IndexRange> cut_gradient_buckets(const std::vector<int64_t>& padded_sizes,
                                             const std::vector<int64_t>& layers, int64_t bucket_elements);

}  // namespace mt::train
