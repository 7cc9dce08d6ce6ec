// Residual add and scaling.
//   add:   y = a + b (same shape);  da += dy, db += dy
//   scale: y = alpha x;             dx += alpha dy
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable add(const Variable& a, const Variable& b) {
  Variable out(ops::binary(BinaryOp::Add, a.value(), b.value()));
  if (any_requires_grad({&a, &b})) {
    record_op("add", out, [a, b, out] {
      if (a.requires_grad()) ops::add_(a.grad_ref(), out.grad());
      if (b.requires_grad()) ops::add_(b.grad_ref(), out.grad());
    });
  }
  return out;
}

Variable scale(const Variable& x, double alpha) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  ops::axpby(alpha, x.value(), 0.0, y);
  Variable out(y);
  if (any_requires_grad({&x})) {
    record_op("scale", out, [x, out, alpha] { ops::add_(x.grad_ref(), out.grad(), alpha); });
  }
  return out;
}

}  // namespace mt::ag
