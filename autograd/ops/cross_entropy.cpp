// Mean softmax cross-entropy with an optional loss mask.
//   forward:  logits [N,V], targets [N], mask [N] -> loss = sum_n m_n ce_n / sum_n m_n,
//             ce_n = lse_n - logits[n, t_n]; only lse [N] is kept (no probabilities)
//   backward: dlogits[n] += dloss * m_n / sum(m) * (softmax(logits[n]) - onehot(t_n))
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable cross_entropy(const Variable& logits, const Tensor& targets, const Tensor& loss_mask) {
  require_defined("cross_entropy", {{"logits", &logits}});
  const Tensor& lv = logits.value();
  MT_CHECK(lv.dim() >= 2, "cross_entropy: expected logits [..., V]; got logits ", lv.str());
  int64_t n = lv.numel() / std::max<int64_t>(lv.size(-1), 1);
  MT_CHECK(!loss_mask.defined() || loss_mask.numel() == n, "cross_entropy: loss mask ", loss_mask.str(),
           " needs one entry per row of logits ", lv.str());
  Tensor losses = Tensor::empty({n}, lv.dtype(), lv.device());
  Tensor lse = Tensor::empty({n}, lv.dtype(), lv.device());
  ops::cross_entropy_forward(lv, targets, losses, lse);

  // weights[n] = m_n / sum(m)  (or 1/N without a mask)
  Tensor weights;
  if (loss_mask.defined()) {
    weights = loss_mask.reshape({n}).to(lv.dtype());
    double total = ops::reduce(ReduceOp::Sum, weights);
    ops::scale_(weights, total != 0.0 ? 1.0 / total : 0.0);
  } else {
    weights = Tensor::full({n}, n ? 1.0 / double(n) : 0.0, lv.dtype(), lv.device());
  }
  // Rows with weight 0 are left out (not multiplied by 0), so a masked row whose loss is
  // infinite cannot turn the mean into NaN.
  std::vector<double> l = losses.to_double_vector(), wts = weights.to_double_vector();
  double loss = 0;
  for (size_t i = 0; i < l.size(); ++i)
    if (wts[i] != 0.0) loss += l[i] * wts[i];
  Variable out(Tensor::scalar(loss, lv.dtype(), lv.device()));
  if (any_requires_grad({&logits})) {
    record_op("cross_entropy", out, [s = logits.grad_slot(), lv, targets, lse, weights](const Tensor& dout) {
      Tensor dlosses = weights.clone();
      ops::scale_(dlosses, dout.item());
      ops::cross_entropy_backward(lv, targets, lse, dlosses, s.grad_ref());
    });
  }
  return out;
}

}  // namespace mt::ag
