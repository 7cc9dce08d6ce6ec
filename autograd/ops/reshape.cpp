// Reshape: a view of x with another shape (same element count); dx += dy viewed with x's shape.
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable reshape(const Variable& x, const Shape& shape) {
  require_defined("reshape", {{"x", &x}});
  Variable out(x.value().reshape(shape));
  if (any_requires_grad({&x})) {
    record_op("reshape", out, [xs = x.grad_slot()](const Tensor& dout) {
      Tensor dx = xs.grad_ref();
      ops::add_(dx, dout.reshape(dx.shape()));
    });
  }
  return out;
}

}  // namespace mt::ag
