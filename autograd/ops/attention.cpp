// Fused causal self-attention: qkv [B,T,3C] -> out [B,T,C]; saves qkv, out and lse [B,H,T].
// Forward and backward math: runtime/cpu/attention.cpp.
//
// Under autocast to bf16 (precision: bf16) an f32 qkv is rounded to bf16 once, here, on every
// device alike: the kernel then multiplies bf16 operands (q, k, v, P, dO, dS) with f32 accumulation,
// as a GPU's flash attention does, and keeps softmax, lse, out and the gradient in f32. The saved
// qkv is the bf16 copy (half the memory). fp16 autocast and f64 leave qkv as it is.
#include "autograd/autocast.h"
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable causal_self_attention(const Variable& qkv, int64_t n_head, const AttentionDropout& dropout) {
  require_defined("attention", {{"qkv", &qkv}});
  const Tensor& x = qkv.value();
  MT_CHECK(x.dim() == 3 && x.size(2) % 3 == 0, "attention: expected qkv [B,T,3C]; got qkv ", x.str());
  MT_CHECK(n_head > 0, "attention: n_head must be positive, got ", n_head, " (qkv ", x.str(), ")");
  bool to_bf16 = x.dtype() == DType::F32 && autocast_dtype() == DType::BF16;
  Tensor q = to_bf16 ? x.to(DType::BF16) : x;
  DType out_dtype = to_bf16 ? DType::F32 : x.dtype();
  int64_t bsz = q.size(0), t_len = q.size(1), c = q.size(2) / 3;
  Tensor y = Tensor::empty({bsz, t_len, c}, out_dtype, q.device());
  Tensor lse = Tensor::empty({bsz, n_head, t_len}, out_dtype, q.device());
  ops::attention_forward(q, n_head, y, lse, dropout);
  Variable out(y);
  if (any_requires_grad({&qkv})) {
    record_op("attention", out, [s = qkv.grad_slot(), q, y, lse, n_head, dropout](const Tensor& dout) {
      bool accumulate = true;
      Tensor& dqkv = s.grad_for_update(&accumulate);  // written, not added, when qkv has no gradient yet
      ops::attention_backward(dout, q, y, lse, n_head, dqkv, dropout, accumulate);
    });
  }
  return out;
}

}  // namespace mt::ag
