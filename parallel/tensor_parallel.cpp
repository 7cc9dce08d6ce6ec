#include "parallel/tensor_parallel.h"

#include <cmath>

#include "autograd/ops.h"
#include "parallel/collective_ops.h"

namespace mt::parallel {
namespace {

bool split(Communicator* group) {
  return group && group->size() > 1;
}

// The vocabulary rows held by this rank: [r V_local, (r+1) V_local) of p V_local.
VocabShard shard_of_rank(int64_t local_rows, Communicator& group) {
  return {group.rank() * local_rows, group.size() * local_rows};
}

}  // namespace

Tensor all_reduce_logsumexp(const Tensor& local_lse, Communicator& group) {
  Tensor m = local_lse.to(DType::F64);
  group.all_reduce(m, ReduceKind::Max);
  std::vector<double> lse = local_lse.to_double_vector(), mx = m.to_double_vector();
  std::vector<double> sums(lse.size());
  for (size_t i = 0; i < lse.size(); ++i) sums[i] = std::exp(lse[i] - mx[i]);
  Tensor s = Tensor::from_vector(sums, {int64_t(sums.size())});
  group.all_reduce(s, ReduceKind::Sum);
  std::vector<double> total = s.to_double_vector();
  for (size_t i = 0; i < lse.size(); ++i) lse[i] = mx[i] + std::log(total[i]);
  return Tensor::from_vector(lse, local_lse.shape()).to(local_lse.dtype()).to(local_lse.device());
}

Variable column_parallel_linear(const Variable& x, const Variable& w, const Variable& b, Communicator* group) {
  return ag::linear(split(group) ? copy_to_group(x, *group) : x, w, b);
}

Variable row_parallel_linear(const Variable& x, const Variable& w, const Variable& b, Communicator* group) {
  if (!split(group)) return ag::linear(x, w, b);
  Variable y = reduce_from_group(ag::linear(x, w), *group);
  return b.defined() ? ag::add_bias(y, b) : y;
}

Variable vocab_parallel_embedding(const Tensor& ids, const Variable& wte, Communicator* group) {
  if (!split(group)) return ag::embedding(ids, wte, {});
  return reduce_from_group(ag::embedding(ids, wte, {}, shard_of_rank(wte.value().size(0), *group)), *group);
}

Variable vocab_parallel_cross_entropy(const Variable& logits, const Tensor& targets, const Tensor& loss_mask,
                                      Communicator* group, double expected_dout, bool overwrite_logits) {
  if (!split(group)) return ag::cross_entropy(logits, targets, loss_mask, {}, {}, expected_dout, overwrite_logits);
  MT_CHECK(logits.defined() && logits.value().dim() >= 2, "vocab_parallel_cross_entropy: expected logits [..., V/p]");
  VocabShard shard = shard_of_rank(logits.value().size(-1), *group);
  return ag::cross_entropy(logits, targets, loss_mask, shard, [group](Tensor& lse, Tensor& target_logits) {
    lse = all_reduce_logsumexp(lse, *group);
    group->all_reduce(target_logits, ReduceKind::Sum);  // only the rank holding the target adds non-zero
  });
}

}  // namespace mt::parallel
