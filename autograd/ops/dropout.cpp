// Dropout: y = x * keep / (1-p), keep from Philox(key, element index); the backward
// regenerates the same mask from the key instead of storing it.
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable dropout(const Variable& x, double p, RngKey key) {
  require_defined("dropout", {{"x", &x}});
  if (p == 0.0) return x;
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  ops::dropout_forward(x.value(), p, key, y);
  Variable out(y);
  if (any_requires_grad({&x})) {
    record_op("dropout", out,
              [xs = x.grad_slot(), p, key](const Tensor& dout) { ops::dropout_backward(dout, p, key, xs.grad_ref()); });
  }
  return out;
}

}  // namespace mt::ag
