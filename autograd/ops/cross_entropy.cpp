// Mean softmax cross-entropy with an optional loss mask.
//   forward:  logits [N,V], targets [N], mask [N] -> loss = sum_n m_n ce_n / sum_n m_n,
//             ce_n = lse_n - logits[n, t_n]; only lse [N] is kept (no probabilities)
//   backward: dlogits[n] += dloss * m_n / sum(m) * (softmax(logits[n]) - onehot(t_n))
//             (made with the forward when the trainer's seed is known: autograd/ops.h)
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
                       const std::function<void(Tensor& lse, Tensor& target_logits)>& complete, double expected_dout,
                       bool overwrite_logits) {
  require_defined("cross_entropy", {{"logits", &logits}});
  const Tensor& lv = logits.value();
  MT_CHECK(lv.dim() >= 2, "cross_entropy: expected logits [..., V]; got logits ", lv.str());
  int64_t n = lv.numel() / std::max<int64_t>(lv.size(-1), 1);
  MT_CHECK(!loss_mask.defined() || loss_mask.numel() == n, "cross_entropy: loss mask ", loss_mask.str(),
           " needs one entry per row of logits ", lv.str());
  Tensor lse = Tensor::empty({n}, lv.dtype(), lv.device());
  Tensor target_logits = Tensor::empty({n}, lv.dtype(), lv.device());
  Tensor weights = mean_weights(loss_mask, n, lv.dtype(), lv.device());
  // dlosses for an upstream gradient d, as the backward forms them (so a gradient made ahead for
  // the expected d has the bits the backward would compute)
  auto dlosses_for = [weights](double d) {
    Tensor dlosses = weights.clone();
    ops::scale_(dlosses, d);
    return dlosses;
  };
  bool ahead = expected_dout != 0 && !complete && shard.start == 0 && shard.total == 0 && any_requires_grad({&logits});
  Tensor made_ahead;  // the logits' gradient for dout == expected
  double expected = ahead ? Tensor::scalar(expected_dout, lv.dtype(), lv.device()).item() : 0.0;  // as dout holds it
  // The gradient made ahead: f32, or rounded for a reader that rounds it anyway (in bf16/f16, or
  // in f32 holding the rounded values where that reader's GEMMs widen them)
  DType grad_dtype = ahead ? logits.grad_slot().first_write_dtype(/*may_round=*/true) : lv.dtype();
  DType rounding = ahead ? logits.grad_slot().first_write_rounding(/*may_round=*/true) : DType::F32;
  bool made_rounded = rounding != DType::F32;
  bool in_place = ahead && overwrite_logits && grad_dtype == lv.dtype();  // made_ahead is the logits' memory
  if (ahead) {
    made_ahead = in_place ? lv : Tensor::empty(lv.shape(), grad_dtype, lv.device());
    ops::cross_entropy_fused(lv, targets, dlosses_for(expected), lse, target_logits, made_ahead,
                             grad_dtype == lv.dtype() ? rounding : DType::F32);
  } else {
    ops::cross_entropy_forward(lv, targets, lse, target_logits, shard);
    if (complete) complete(lse, target_logits);
  }
  double loss = weighted_sum(ops::binary(BinaryOp::Sub, lse, target_logits), weights);
  Variable out(Tensor::scalar(loss, lv.dtype(), lv.device()));
  if (any_requires_grad({&logits})) {
    record_op("cross_entropy", out,
              [s = logits.grad_slot(), lv, targets, lse, shard, dlosses_for, made_ahead, expected, in_place,
               made_rounded](const Tensor& dout) {
                double d = dout.item();
                // (a rounded gradient made ahead is taken only as the first contribution: added to another,
                // the f32 sum is what the reader must round)
                if (made_ahead.defined() && d == expected && (!s.grad().defined() || !made_rounded)) {
                  s.take_or_add(made_ahead, made_rounded);
                  return;
                }
                if (in_place) {  // the logits are gone: the gradient made for `expected`, scaled to d (and,
                                 // made rounded, rounded again by its reader)
                  s.accumulate(made_ahead, d / expected);
                  return;
                }
                Tensor dlosses = dlosses_for(d);
                bool accumulate = true;
                // a first write rounded for the reader: into bf16/f16, or in f32 holding rounded values
                Tensor& dlogits = s.grad_for_update(&accumulate, /*may_round=*/true);
                DType round_to = !accumulate && dlogits.dtype() == lv.dtype()
                                     ? s.first_write_rounding(/*may_round=*/true)
                                     : DType::F32;
                ops::cross_entropy_backward(lv, targets, lse, dlosses, dlogits, shard, accumulate, round_to);
              });
  }
  return out;
}

}  // namespace mt::ag
