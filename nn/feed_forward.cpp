#include "nn/feed_forward.h"

#include "autograd/ops.h"
#include "parallel/shards.h"
#include "parallel/tensor_parallel.h"
#include "runtime/random.h"

namespace mt::nn {

Variable add_tensor_parallel(ParameterRegistry& params, const std::string& name, const Tensor& full, ParamTags tags,
                             parallel::Communicator* tensor_group) {
  if (!tensor_group || tensor_group->size() == 1 || tags.tp_split_dim < 0) return params.add(name, full, tags);
  return params.add(
      name, parallel::shard_of(full, {tags.tp_split_dim, tags.tp_blocks}, tensor_group->rank(), tensor_group->size()),
      tags);
}

DenseMlp::DenseMlp(ParameterRegistry& params, const std::string& prefix, int64_t hidden, int64_t ffn, double std,
                   double out_std, RngKey init_key, DType dtype, parallel::Communicator* tensor_group)
    : tensor_group_(tensor_group) {
  RngKey k1 = init_key, k2 = init_key;
  k2.stream ^= 0x9E3779B97F4A7C15ull;
  auto add = [&](const std::string& name, const Tensor& full, ParamTags tags) {
    return add_tensor_parallel(params, prefix + name, full, tags, tensor_group);
  };
  fc1_w_ = add("dense_h_to_4h.weight", randn({ffn, hidden}, dtype, k1, 0.0, std), ParamTags{}.set_tp_split(0));
  fc1_b_ = add("dense_h_to_4h.bias", Tensor::zeros({ffn}, dtype), ParamTags::no_decay().set_tp_split(0));
  fc2_w_ = add("dense_4h_to_h.weight", randn({hidden, ffn}, dtype, k2, 0.0, out_std), ParamTags{}.set_tp_split(1));
  fc2_b_ = add("dense_4h_to_h.bias", Tensor::zeros({hidden}, dtype), ParamTags::no_decay());
}

FeedForwardOutput DenseMlp::forward(const Variable& x, bool, RngKey, int64_t) const {
  FeedForwardOutput out;
  Variable hidden = ag::gelu(parallel::column_parallel_linear(x, fc1_w_, fc1_b_, tensor_group_));
  out.y = parallel::row_parallel_linear(hidden, fc2_w_, fc2_b_, tensor_group_);
  return out;
}

}  // namespace mt::nn
