// Fused causal self-attention: qkv [B,T,3C] -> out [B,T,C]; saves qkv, out and lse [B,H,T].
// Forward and backward math: runtime/cpu/attention.cpp.
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable causal_self_attention(const Variable& qkv, int64_t n_head, const AttentionDropout& dropout) {
  require_defined("attention", {{"qkv", &qkv}});
  const Tensor& q = qkv.value();
  MT_CHECK(q.dim() == 3 && q.size(2) % 3 == 0, "attention: expected qkv [B,T,3C]; got qkv ", q.str());
  MT_CHECK(n_head > 0, "attention: n_head must be positive, got ", n_head, " (qkv ", q.str(), ")");
  int64_t bsz = q.size(0), t_len = q.size(1), c = q.size(2) / 3;
  Tensor y = Tensor::empty({bsz, t_len, c}, q.dtype(), q.device());
  Tensor lse = Tensor::empty({bsz, n_head, t_len}, q.dtype(), q.device());
  ops::attention_forward(q, n_head, y, lse, dropout);
  Variable out(y);
  if (any_requires_grad({&qkv})) {
    record_op("attention", out, [s = qkv.grad_slot(), q, y, lse, n_head, dropout](const Tensor& dout) {
      ops::attention_backward(dout, q, y, lse, n_head, s.grad_ref(), dropout);
    });
  }
  return out;
}

}  // namespace mt::ag
