// Softmax over the last dimension: y = softmax(x); dx += y * (dy - sum(dy*y)). y saved.
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable softmax(const Variable& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  ops::softmax_forward(x.value(), y);
  Variable out(y);
  if (any_requires_grad({&x})) {
    record_op("softmax", out, [x, out] { ops::softmax_backward(out.value(), out.grad(), x.grad_ref()); });
  }
  return out;
}

}  // namespace mt::ag
