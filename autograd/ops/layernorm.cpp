// LayerNorm: x [..., C], w [C], b [C] -> y like x; mean and rstd [N] saved for the backward.
// The math of both directions is in runtime/cpu/layernorm.cpp.
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable layernorm(const Variable& x, const Variable& w, const Variable& b, double eps) {
  const Tensor& xv = x.value();
  int64_t c = xv.dim() ? xv.size(-1) : 0;
  int64_t n = c ? xv.numel() / c : 0;
  Tensor y = Tensor::empty(xv.shape(), xv.dtype(), xv.device());
  Tensor mean = Tensor::empty({n}, xv.dtype(), xv.device());
  Tensor rstd = Tensor::empty({n}, xv.dtype(), xv.device());
  ops::layernorm_forward(xv, w.value(), b.value(), eps, y, mean, rstd);
  Variable out(y);
  if (any_requires_grad({&x, &w, &b})) {
    record_op("layernorm", out, [x, w, b, out, mean, rstd] {
      Tensor* dx = x.requires_grad() ? &x.grad_ref() : nullptr;
      Tensor* dw = w.requires_grad() ? &w.grad_ref() : nullptr;
      Tensor* db = b.requires_grad() ? &b.grad_ref() : nullptr;
      ops::layernorm_backward(out.grad(), x.value(), w.value(), mean, rstd, dx, dw, db);
    });
  }
  return out;
}

}  // namespace mt::ag
