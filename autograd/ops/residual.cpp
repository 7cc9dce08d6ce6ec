// Residual add and scaling.
//   add:      y = a + b (same shape);  da += dy, db += dy
//   scale:    y = alpha x;             dx += alpha dy
//   multiply: y = x * f (f constant);  dx += f * dy
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable add(const Variable& a, const Variable& b) {
  require_defined("add", {{"a", &a}, {"b", &b}});
  Variable out(ops::binary(BinaryOp::Add, a.value(), b.value()));
  if (any_requires_grad({&a, &b})) {
    record_op("add", out, [as = a.grad_slot(), bs = b.grad_slot()](const Tensor& dout) {
      if (as.requires_grad()) as.accumulate(dout);
      if (bs.requires_grad()) bs.accumulate(dout);
    });
  }
  return out;
}

Variable scale(const Variable& x, double alpha) {
  require_defined("scale", {{"x", &x}});
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  ops::axpby(alpha, x.value(), 0.0, y);
  Variable out(y);
  if (any_requires_grad({&x})) {
    record_op("scale", out, [xs = x.grad_slot(), alpha](const Tensor& dout) { xs.accumulate(dout, alpha); });
  }
  return out;
}

Variable multiply(const Variable& x, const Tensor& factor) {
  require_defined("multiply", {{"x", &x}});
  Variable out(ops::binary(BinaryOp::Mul, x.value(), factor));
  if (any_requires_grad({&x})) {
    record_op("multiply", out, [xs = x.grad_slot(), factor](const Tensor& dout) {
      xs.accumulate(ops::binary(BinaryOp::Mul, factor, dout));
    });
  }
  return out;
}

}  // namespace mt::ag
