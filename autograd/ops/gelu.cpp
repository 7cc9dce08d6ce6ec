// GELU (tanh approximation): y = gelu(x); dx += gelu'(x) * dy. Any shape; x saved.
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable gelu(const Variable& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  ops::gelu_forward(x.value(), y);
  Variable out(y);
  if (any_requires_grad({&x})) {
    record_op("gelu", out, [x, out] { ops::gelu_backward(x.value(), out.grad(), x.grad_ref()); });
  }
  return out;
}

}  // namespace mt::ag
