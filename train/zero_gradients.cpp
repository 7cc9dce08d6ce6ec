#include "train/zero_gradients.h"

#include <algorithm>

#include "runtime/ops.h"

namespace mt::train {

std::vector<IndexRange> cut_gradient_buckets(const std::vector<int64_t>& padded_sizes,
                                             const std::vector<int64_t>& layers, int64_t bucket_elements) {
  MT_CHECK(padded_sizes.size() == layers.size() && bucket_elements > 0, "cut_gradient_buckets: ", padded_sizes.size(),
           " sizes, ", layers.size(), " layers, bucket ", bucket_elements);
  std::vector<IndexRange> out;
  int64_t filled = 0;
  for (size_t i = padded_sizes.size(); i-- > 0;) {
    // within one layer; the few parameters outside the layers (large embeddings) one by one, each
    // reduced in its own gradient
    bool joins = !out.empty() && layers[i] >= 0 && layers[out.back().first] == layers[i] &&
                 filled + padded_sizes[i] <= bucket_elements;
    if (joins) {
      out.back().first = i;
      filled += padded_sizes[i];
    } else {
      out.push_back({i, i + 1});
      filled = padded_sizes[i];
    }
  }
  return out;
}

ZeroGradientReducer::ZeroGradientReducer(ParameterRegistry& params, const FlatShard (&shards)[kNumParamGroups],
                                         std::vector<int64_t> parameter_layers, int64_t bucket_elements,
                                         int data_parallel)
    : params_(params), data_parallel_(data_parallel) {
  const std::vector<Parameter>& all = params.all();
  MT_CHECK(params.packed() && params.grad_storage() == GradStorage::PerParameter,
           "ZeRO stage 2: the parameters must be packed with per-parameter gradients");
  MT_CHECK(parameter_layers.size() == all.size(), "ZeRO stage 2: ", parameter_layers.size(), " layers for ", all.size(),
           " parameters");
  for (int gi = 0; gi < kNumParamGroups; ++gi) {
    ParamGroup g = ParamGroup(gi);
    shards_[gi] = shards[gi];
    const Tensor& values = params.flat_values(g);
    if (!values.defined()) continue;
    grads_[gi] = Tensor::zeros({shards_[gi].owned()}, values.dtype(), values.device());
    // the group's parameters in flat order; each one's range runs to the next one's offset
    std::vector<size_t> index;
    for (size_t i = 0; i < all.size(); ++i)
      if (all[i].group() == g) index.push_back(i);
    std::vector<int64_t> sizes, layers;
    for (size_t k = 0; k < index.size(); ++k) {
      int64_t end = k + 1 < index.size() ? all[index[k + 1]].offset : values.numel();
      sizes.push_back(end - all[index[k]].offset);
      layers.push_back(parameter_layers[index[k]]);
    }
    for (IndexRange r : cut_gradient_buckets(sizes, layers, bucket_elements)) {
      Bucket b;
      b.group = g;
      b.lo = all[index[r.first]].offset;
      b.hi = r.last < index.size() ? all[index[r.last]].offset : values.numel();
      b.after_layer = layers[r.first];
      for (size_t k = r.first; k < r.last; ++k) b.params.push_back(index[k]);
      largest_bucket_ = std::max(largest_bucket_, b.hi - b.lo);
      if (b.params.size() > 1 && shards_[gi].partitioned())  // (a whole group is added in place)
        largest_staging_ = std::max(largest_staging_, b.hi - b.lo);
      buckets_.push_back(std::move(b));
    }
  }
}

void ZeroGradientReducer::zero() {
  for (Tensor& g : grads_)
    if (g.defined()) g.zero_();
  for (Bucket& b : buckets_) b.reduced = false;
}

void ZeroGradientReducer::layer_backward_done(int64_t layer) {
  // every layer from `layer` up has run its backward (they end in decreasing order)
  for (Bucket& b : buckets_)
    if (!b.reduced && b.after_layer >= layer) reduce(b);
}

void ZeroGradientReducer::finish_backward() {
  for (Bucket& b : buckets_)
    if (!b.reduced) reduce(b);
  for (Bucket& b : buckets_) b.reduced = false;  // the next micro-batch's backward
}

HeldGradients ZeroGradientReducer::held() const {
  HeldGradients h;
  for (int g = 0; g < kNumParamGroups; ++g) {
    h.grads[g] = grads_[g];
    h.begin[g] = shards_[g].begin;
    h.partition[g] = shards_[g].partitioned() ? shards_[g].group : nullptr;
  }
  return h;
}

void ZeroGradientReducer::reduce(Bucket& b) {
  b.reduced = true;
  int gi = int(b.group);
  const FlatShard& s = shards_[gi];
  const std::vector<Parameter>& all = params_.all();
  double share = 1.0 / double(data_parallel_);
  if (!s.partitioned()) {  // this rank owns the whole group: add each gradient into it
    for (size_t i : b.params) {
      const Parameter& p = all[i];
      Tensor into = grads_[gi].narrow(p.offset, p.var.value().numel());
      if (p.var.grad().defined()) ops::axpby(share, p.var.grad().reshape({-1}), 1.0, into);
      p.var.clear_grad();
    }
    return;
  }
  // the bucket's elements [lo, hi) in one buffer: a single parameter's own gradient (reduced in
  // place), else the staging buffer (zeros where no gradient was made: padding, an expert without tokens)
  Tensor stage;
  int64_t lo = b.lo, hi = b.hi;
  if (b.params.size() == 1) {
    const Parameter& p = all[b.params[0]];
    hi = lo + p.var.value().numel();
    stage = p.var.grad().defined() ? p.var.grad().reshape({-1})
                                   : Tensor::zeros({hi - lo}, grads_[gi].dtype(), grads_[gi].device());
    p.var.clear_grad();  // (stage keeps it until reduced)
  } else {
    if (!staging_.defined()) staging_ = Tensor::empty({largest_staging_}, grads_[gi].dtype(), grads_[gi].device());
    stage = staging_.narrow(0, hi - lo);
    stage.zero_();
    for (size_t i : b.params) {
      const Parameter& p = all[i];
      if (p.var.grad().defined())
        stage.narrow(p.offset - lo, p.var.value().numel()).copy_from(p.var.grad().reshape({-1}));
      p.var.clear_grad();
    }
  }
  // each owner's part of the bucket, reduced to it, in rank order
  int first = int(lo / s.chunk), last = int((hi - 1) / s.chunk);
  for (int r = first; r <= last; ++r) {
    int64_t a = std::max(lo, int64_t(r) * s.chunk), e = std::min(hi, int64_t(r + 1) * s.chunk);
    if (e <= a) continue;
    Tensor piece = stage.narrow(a - lo, e - a);
    s.group->reduce(piece, parallel::ReduceKind::Sum, r);
    if (r != s.group->rank()) continue;
    Tensor into = grads_[gi].narrow(a - s.begin, e - a);
    ops::axpby(share, piece, 1.0, into);
  }
}

}  // namespace mt::train
