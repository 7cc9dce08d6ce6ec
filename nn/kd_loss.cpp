#include "nn/kd_loss.h"

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "parallel/tensor_parallel.h"
#include "runtime/ops.h"

namespace mt::nn {

Variable kd_loss(const Variable& student, const Tensor& teacher, double temperature, double beta,
                 const Tensor& loss_mask, parallel::Communicator* tensor_group) {
  require_defined("kd_loss", {{"student", &student}});
  const Tensor& a = student.value();
  MT_CHECK(a.dim() >= 2 && teacher.defined() && teacher.shape() == a.shape() && temperature > 0,
           "kd_loss: expected student and teacher logits of one shape [..., V] and a positive temperature; got "
           "student ",
           a.str(), ", teacher ", teacher.str(), ", temperature ", temperature);
  int64_t n = a.numel() / a.size(-1);
  MT_CHECK(!loss_mask.defined() || loss_mask.numel() == n, "kd_loss: loss mask ", loss_mask.str(),
           " needs one entry per row of logits ", a.str());
  bool split = tensor_group && tensor_group->size() > 1;
  double scale = 1.0 / temperature;
  Tensor lse_a = Tensor::empty({n}, a.dtype(), a.device()), lse_b = Tensor::empty({n}, a.dtype(), a.device());
  ops::scaled_logsumexp(a, scale, lse_a);
  ops::scaled_logsumexp(teacher, scale, lse_b);
  if (split) {
    lse_a = parallel::all_reduce_logsumexp(lse_a, *tensor_group);
    lse_b = parallel::all_reduce_logsumexp(lse_b, *tensor_group);
  }
  Tensor cross = Tensor::empty({n}, a.dtype(), a.device());
  ops::kd_cross_term(a, teacher, scale, lse_b, cross);
  if (split) tensor_group->all_reduce(cross, parallel::ReduceKind::Sum);
  Tensor kl = ops::binary(BinaryOp::Add, ops::binary(BinaryOp::Sub, cross, lse_b), lse_a);
  Tensor weights = ag::mean_weights(loss_mask, n, a.dtype(), a.device());
  double factor = beta * temperature * temperature;
  Variable out(Tensor::scalar(factor * ag::weighted_sum(kl, weights), a.dtype(), a.device()));
  if (any_requires_grad({&student})) {
    record_op("kd_loss", out,
              [s = student.grad_slot(), a, teacher, scale, lse_a, lse_b, weights, factor](const Tensor& dout) {
                Tensor dkl = weights.clone();
                ops::scale_(dkl, factor * dout.item());
                ops::kd_backward(a, teacher, scale, lse_a, lse_b, dkl, s.grad_ref());
              });
  }
  return out;
}

}  // namespace mt::nn
