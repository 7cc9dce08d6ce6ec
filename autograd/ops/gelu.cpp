// GELU (tanh approximation): y = gelu(x); dx += gelu'(x) * dy. Any shape; x saved.
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable gelu(const Variable& x) {
  require_defined("gelu", {{"x", &x}});
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  ops::gelu_forward(x.value(), y);
  Variable out(y);
  if (any_requires_grad({&x})) {
    record_op("gelu", out, [xs = x.grad_slot(), xv = x.value()](const Tensor& dout) {
      ops::gelu_backward(xv, dout, xs.grad_ref());
    });
  }
  return out;
}

}  // namespace mt::ag
