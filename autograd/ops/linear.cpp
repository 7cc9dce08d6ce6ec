// Linear layer.
//   forward:  x [N,in] (leading dims flattened), w [out,in], b [out] -> y [N,out] = x w^T + b
//   backward: dx [N,in] += dy w;  dw [out,in] += dy^T x;  db [out] += sum_n dy
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {

Variable linear(const Variable& x, const Variable& w, const Variable& b) {
  require_defined("linear", {{"x", &x}, {"weight", &w}});
  const Tensor& xv = x.value();
  MT_CHECK(xv.dim() >= 1 && w.value().dim() == 2 && xv.size(-1) == w.value().size(1) &&
               (!b.defined() || b.shape() == Shape{w.value().size(0)}),
           "linear: expected x [..., in], weight [out, in], bias [out]; got x ", xv.str(), ", weight ", w.value().str(),
           ", bias ", b.defined() ? b.value().str() : "none");
  Tensor x2 = xv.flatten_to_2d();
  int64_t n = x2.size(0), out_features = w.value().size(0);
  Shape out_shape = xv.shape();
  out_shape.back() = out_features;
  Tensor y = Tensor::empty({n, out_features}, xv.dtype(), xv.device());
  double beta = 0.0;
  if (b.defined()) {  // y = ones[N,1] @ b[1,out], then y += x w^T
    Tensor ones = Tensor::full({n, 1}, 1.0, xv.dtype(), xv.device());
    ops::matmul(ones, false, b.value().reshape({1, out_features}), false, y);
    beta = 1.0;
  }
  ops::matmul(x2, false, w.value(), true, y, 1.0, beta);
  Variable out(y.reshape(out_shape));
  if (any_requires_grad({&x, &w, &b})) {
    GradSlot bs = b.defined() ? b.grad_slot() : GradSlot();
    record_op("linear", out, [xs = x.grad_slot(), ws = w.grad_slot(), bs, x2, wv = w.value()](const Tensor& dout) {
      Tensor dy = dout.flatten_to_2d();
      if (xs.requires_grad()) {
        Tensor dx = xs.grad_ref().flatten_to_2d();
        ops::matmul(dy, false, wv, false, dx, 1.0, 1.0);
      }
      if (ws.requires_grad()) ops::matmul(dy, true, x2, false, ws.grad_ref(), 1.0, 1.0);
      if (bs.requires_grad()) ops::sum_rows(dy, bs.grad_ref(), 1.0);
    });
  }
  return out;
}

}  // namespace mt::ag
