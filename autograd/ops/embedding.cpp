// Token + position embedding.
//   forward:  idx [B,T], wte [V,C], wpe [P,C] -> out [B,T,C] = wte[idx] + wpe[t]
//   backward: dwte += scatter-add of dout by idx; dwpe[t] += sum_b dout[b,t] (deterministic)
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable embedding(const Tensor& idx, const Variable& wte, const Variable& wpe) {
  require_defined("embedding", {{"wte", &wte}, {"wpe", &wpe}});
  MT_CHECK(idx.dim() == 2 && wte.value().dim() == 2, "embedding: expected idx [B,T] and wte [V,C]; got idx ", idx.str(),
           ", wte ", wte.value().str());
  Tensor y = Tensor::empty({idx.size(0), idx.size(1), wte.value().size(1)}, wte.dtype(), wte.device());
  ops::embedding_forward(idx, wte.value(), wpe.value(), y);
  Variable out(y);
  if (any_requires_grad({&wte, &wpe})) {
    record_op("embedding", out, [idx, te = wte.grad_slot(), pe = wpe.grad_slot()](const Tensor& dout) {
      Tensor* dwte = te.requires_grad() ? &te.grad_ref() : nullptr;
      Tensor* dwpe = pe.requires_grad() ? &pe.grad_ref() : nullptr;
      ops::embedding_backward(dout, idx, dwte, dwpe);
    });
  }
  return out;
}

}  // namespace mt::ag
