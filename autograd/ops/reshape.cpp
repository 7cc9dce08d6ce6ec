// Reshape: a view of x with another shape (same element count); dx += dy viewed with x's shape.
// Observe: the identity (a view of x) whose backward first shows dy to a callback: dx += dy.
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

Variable observe(const Variable& x, std::function<void(const Tensor& dy)> on_grad) {
  require_defined("observe", {{"x", &x}});
  Variable out(x.value().reshape(x.shape()));
  if (any_requires_grad({&x})) {
    record_op("observe", out, [xs = x.grad_slot(), on_grad = std::move(on_grad)](const Tensor& dout) {
      on_grad(dout);
      xs.accumulate(dout);
    });
  }
  return out;
}

}  // namespace mt::ag
