// Mean softmax cross-entropy with an optional loss mask.
//   forward:  logits [N,V], targets [N], mask [N] -> loss = sum_n m_n ce_n / sum_n m_n,
//             ce_n = lse_n - logits[n, t_n]; only lse [N] is kept (no probabilities)
//   backward: dlogits[n] += dloss * m_n / sum(m) * (softmax(logits[n]) - onehot(t_n))
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Tensor mean_weights(const Tensor& loss_mask, int64_t n, DType dtype, Device device) {
  if (!loss_mask.defined()) return Tensor::full({n}, n ? 1.0 / double(n) : 0.0, dtype, device);
  Tensor weights = loss_mask.reshape({n}).to(dtype).to(device);
  double total = ops::reduce(ReduceOp::Sum, weights);
  ops::scale_(weights, total != 0.0 ? 1.0 / total : 0.0);
  return weights;
}

double weighted_sum(const Tensor& losses, const Tensor& weights) {
  std::vector<double> l = losses.to_double_vector(), w = weights.to_double_vector();
  double sum = 0;
  for (size_t i = 0; i < l.size(); ++i)
    if (w[i] != 0.0) sum += l[i] * w[i];
  return sum;
}

Variable cross_entropy(const Variable& logits, const Tensor& targets, const Tensor& loss_mask) {
  return cross_entropy(logits, targets, loss_mask, {}, {});
}

Variable cross_entropy(const Variable& logits, const Tensor& targets, const Tensor& loss_mask, const VocabShard& shard,
                       const std::function<void(Tensor& lse, Tensor& target_logits)>& complete) {
  require_defined("cross_entropy", {{"logits", &logits}});
  const Tensor& lv = logits.value();
  MT_CHECK(lv.dim() >= 2, "cross_entropy: expected logits [..., V]; got logits ", lv.str());
  int64_t n = lv.numel() / std::max<int64_t>(lv.size(-1), 1);
  MT_CHECK(!loss_mask.defined() || loss_mask.numel() == n, "cross_entropy: loss mask ", loss_mask.str(),
           " needs one entry per row of logits ", lv.str());
  Tensor lse = Tensor::empty({n}, lv.dtype(), lv.device());
  Tensor target_logits = Tensor::empty({n}, lv.dtype(), lv.device());
  ops::cross_entropy_forward(lv, targets, lse, target_logits, shard);
  if (complete) complete(lse, target_logits);
  Tensor weights = mean_weights(loss_mask, n, lv.dtype(), lv.device());
  double loss = weighted_sum(ops::binary(BinaryOp::Sub, lse, target_logits), weights);
  Variable out(Tensor::scalar(loss, lv.dtype(), lv.device()));
  if (any_requires_grad({&logits})) {
    record_op("cross_entropy", out, [s = logits.grad_slot(), lv, targets, lse, weights, shard](const Tensor& dout) {
      Tensor dlosses = weights.clone();
      ops::scale_(dlosses, dout.item());
      bool accumulate = true;
      Tensor& dlogits = s.grad_for_update(&accumulate, /*may_round=*/true);
      ops::cross_entropy_backward(lv, targets, lse, dlosses, dlogits, shard, accumulate);
    });
  }
  return out;
}

}  // namespace mt::ag
