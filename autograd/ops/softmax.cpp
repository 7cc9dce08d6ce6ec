// Softmax over the last dimension: y = softmax(x); dx += y * (dy - sum(dy*y)). y saved.
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable softmax(const Variable& x) {
  require_defined("softmax", {{"x", &x}});
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  ops::softmax_forward(x.value(), y);
  Variable out(y);
  if (any_requires_grad({&x})) {
    record_op("softmax", out,
              [xs = x.grad_slot(), y](const Tensor& dout) { ops::softmax_backward(y, dout, xs.grad_ref()); });
  }
  return out;
}

}  // namespace mt::ag
