// GELU (tanh approximation): y = gelu(x); dx += gelu'(x) * dy (written, not added, when x has no
// gradient yet). Any shape; x saved.
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
      bool accumulate = true;
      Tensor& dx = xs.grad_for_update(&accumulate);
      ops::gelu_backward(xv, dout, dx, accumulate);
    });
  }
  return out;
}

}  // namespace mt::ag
