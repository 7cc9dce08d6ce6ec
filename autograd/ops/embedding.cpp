// Token + position embedding.
//   forward:  idx [B,T], wte [V,C], wpe [P,C] -> out [B,T,C] = wte[idx] + wpe[t]
//   backward: dwte += scatter-add of dout by idx; dwpe[t] += sum_b dout[b,t] (deterministic)
// Either table may be absent; a vocabulary shard's wte holds rows [start, start + V) only.
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable embedding(const Tensor& idx, const Variable& wte, const Variable& wpe, const VocabShard& shard) {
  const Variable& table = wte.defined() ? wte : wpe;
  MT_CHECK(table.defined(), "embedding: needs a word table wte or a position table wpe");
  MT_CHECK(idx.dim() == 2 && table.value().dim() == 2, "embedding: expected idx [B,T] and tables [rows,C]; got idx ",
           idx.str(), ", table ", table.value().str());
  Tensor y = Tensor::empty({idx.size(0), idx.size(1), table.value().size(1)}, table.dtype(), table.device());
  ops::embedding_forward(idx, wte.defined() ? wte.value() : Tensor(), wpe.defined() ? wpe.value() : Tensor(), y, shard);
  Variable out(y);
  if (any_requires_grad({&wte, &wpe})) {
    GradSlot te = wte.defined() ? wte.grad_slot() : GradSlot(), pe = wpe.defined() ? wpe.grad_slot() : GradSlot();
    record_op("embedding", out, [idx, te, pe, shard](const Tensor& dout) {
      Tensor* dwte = te.requires_grad() ? &te.grad_ref() : nullptr;
      Tensor* dwpe = pe.requires_grad() ? &pe.grad_ref() : nullptr;
      ops::embedding_backward(dout, idx, dwte, dwpe, shard);
    });
  }
  return out;
}

}  // namespace mt::ag
