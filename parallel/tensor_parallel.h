// Megatron's tensor-parallel layers over a group of p ranks (this rank r). Each takes the group
// as a pointer: null (or a group of one) runs the plain single-process op, so a model is written
// once for every layout.
//   column_parallel_linear  x [N,in] replicated, w_r [out/p,in], b_r [out/p]
//                           -> y_r [N,out/p] = f(x) w_r^T + b_r     (f = copy_to_group)
//   row_parallel_linear     x_r [N,in/p], w_r [out,in/p], b [out] replicated
//                           -> y [N,out] = g(x_r w_r^T) + b         (g = reduce_from_group)
//   vocab_parallel_embedding  ids [B,T], wte_r [V/p,C] (vocabulary rows [r V/p, (r+1) V/p))
//                           -> [B,T,C] = g(wte_r rows of the ids in this shard, 0 for others)
//   vocab_parallel_cross_entropy  logits_r [N,V/p] (the same vocabulary columns), targets [N],
//                           mask [N] -> the masked mean cross-entropy over the whole vocabulary:
//                           lse = log sum_r exp(lse_r) (all-reduce max, then sum), the target
//                           logit from the rank holding it (all-reduce sum). The backward needs no
//                           communication: dlogits_r = dloss w_n (softmax_r(logits; lse) - onehot_r).
// The shards hold what parallel/shards.h cuts from the full tensors, so with the same full
// weights every layout computes the single-process function.
#pragma once

#include "autograd/variable.h"
#include "parallel/communicator.h"

namespace mt::parallel {

Variable column_parallel_linear(const Variable& x, const Variable& w, const Variable& b, Communicator* group);
Variable row_parallel_linear(const Variable& x, const Variable& w, const Variable& b, Communicator* group);
Variable vocab_parallel_embedding(const Tensor& ids, const Variable& wte, Communicator* group);
// expected_dout, overwrite_logits: ag::cross_entropy's (used without a tensor-parallel split).
Variable vocab_parallel_cross_entropy(const Variable& logits, const Tensor& targets, const Tensor& loss_mask,
                                      Communicator* group, double expected_dout = 0, bool overwrite_logits = false);

// Row log-sum-exps over the whole vocabulary from each rank's, local_lse [N]:
// lse = m + log sum_r exp(lse_r - m) with m = max_r lse_r (two all-reduces over the group).
Tensor all_reduce_logsumexp(const Tensor& local_lse, Communicator& group);

}  // namespace mt::parallel
