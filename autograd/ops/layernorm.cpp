// LayerNorm: x [..., C], w [C], b [C] -> y like x; mean and rstd [N] saved for the backward.
// The math of both directions is in runtime/cpu/layernorm.cpp.
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable layernorm(const Variable& x, const Variable& w, const Variable& b, double eps) {
  require_defined("layernorm", {{"x", &x}, {"weight", &w}, {"bias", &b}});
  const Tensor& xv = x.value();
  int64_t c = xv.dim() ? xv.size(-1) : 0;
  int64_t n = c ? xv.numel() / c : 0;
  Tensor y = Tensor::empty(xv.shape(), xv.dtype(), xv.device());
  Tensor mean = Tensor::empty({n}, xv.dtype(), xv.device());
  Tensor rstd = Tensor::empty({n}, xv.dtype(), xv.device());
  ops::layernorm_forward(xv, w.value(), b.value(), eps, y, mean, rstd);
  Variable out(y);
  if (any_requires_grad({&x, &w, &b})) {
    record_op("layernorm", out,
              [xs = x.grad_slot(), ws = w.grad_slot(), bs = b.grad_slot(), xv, wv = w.value(), mean,
               rstd](const Tensor& dout) {
                Tensor* dx = xs.requires_grad() ? &xs.grad_ref() : nullptr;
                Tensor* dw = ws.requires_grad() ? &ws.grad_ref() : nullptr;
                Tensor* db = bs.requires_grad() ? &bs.grad_ref() : nullptr;
                ops::layernorm_backward(dout, xv, wv, mean, rstd, dx, dw, db);
              });
  }
  return out;
}

}  // namespace mt::ag
