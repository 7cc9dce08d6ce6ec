// Linear layer.
//   forward:  x [N,in] (leading dims flattened), w [out,in], b [out] -> y [N,out] = x w^T + b
//             (one GEMM that adds b, ops::matmul_bias)
//   backward: dx [N,in] += dy w;  dw [out,in] += dy^T x;  db [out] += sum_n dy
//             (dx, dw written with beta 0 where no gradient was there yet: no zero fill; without
//             a bias dy may arrive already rounded to lo, autograd/variable.h set_rounded_reader)
//   Under autocast (autograd/autocast.h) x, w and dy enter the GEMMs rounded to bf16/f16 (in
//   16 bits, or in f32 where the GEMMs would widen them: ops::rounded_operand_dtype); y, dx, dw,
//   db stay f32.
// Bias add.
//   forward:  x [N,C] (leading dims flattened), b [C] -> y = x + b (every row)
//   backward: dx += dy;  db [C] += sum_n dy
#include "autograd/autocast.h"
#include "autograd/ops.h"
#include "runtime/ops.h"

namespace mt::ag {
namespace {
// y [N,C] = b in every row: a row gather of b [1,C] (one write pass).
void fill_rows_with(const Tensor& b, Tensor& y) {
  Tensor row_zero = Tensor::zeros({y.size(0)}, DType::I64, y.device());
  ops::gather_rows(b.reshape({1, b.numel()}), &row_zero, nullptr, 0, /*accumulate=*/false, y);
}
}  // namespace

Variable linear(const Variable& x, const Variable& w, const Variable& b) {
  require_defined("linear", {{"x", &x}, {"weight", &w}});
  const Tensor& xv = x.value();
  MT_CHECK(xv.dim() >= 1 && w.value().dim() == 2 && xv.size(-1) == w.value().size(1) &&
               (!b.defined() || b.shape() == Shape{w.value().size(0)}),
           "linear: expected x [..., in], weight [out, in], bias [out]; got x ", xv.str(), ", weight ", w.value().str(),
           ", bias ", b.defined() ? b.value().str() : "none");
  Tensor x2 = xv.flatten_to_2d();
  // Mixed precision: the GEMM operands in 16 bits (f32 values only; f64 gradchecks never cast).
  DType lo = xv.dtype() == DType::F32 && w.dtype() == DType::F32 ? autocast_dtype() : xv.dtype();
  bool mixed = lo != xv.dtype();
  Tensor x_op = mixed ? autocast_operand(x2, lo) : x2;
  Tensor w_op = mixed ? autocast_operand(w.value(), lo) : w.value();
  int64_t n = x2.size(0), out_features = w.value().size(0);
  Shape out_shape = xv.shape();
  out_shape.back() = out_features;
  Tensor y = Tensor::empty({n, out_features}, xv.dtype(), xv.device());
  if (b.defined())
    ops::matmul_bias(x_op, false, w_op, true, b.value(), y);
  else
    ops::matmul(x_op, false, w_op, true, y);
  Variable out(y.reshape(out_shape));
  if (any_requires_grad({&x, &w, &b})) {
    // Without a bias the backward reads dy only as the rounded GEMM operand: a producer of dy may
    // store it rounded (the cross-entropy over the vocabulary does: no extra pass; in bf16, or in
    // place in f32 where the GEMMs widen bf16), which the backward then sees on dy's slot.
    GradSlot::RoundedGradWatch ys;  // (none: dy is never stored rounded)
    if (mixed && !b.defined()) {
      out.grad_slot().set_rounded_reader(lo);
      ys = out.grad_slot().rounded_grad_watch();
    }
    GradSlot bs = b.defined() ? b.grad_slot() : GradSlot();
    DType round_to = mixed ? lo : DType::F32;  // (F32: the GEMMs take dy as it is)
    record_op("linear", out,
              [xs = x.grad_slot(), ws = w.grad_slot(), bs, ys, x_op, w_op, round_to](const Tensor& dout) {
                Tensor dy = dout.flatten_to_2d();
                // dy rounded as x_op and w_op are (ops::round_operand: in bf16/f16, or in f32 holding their
                // values where the GEMMs widen them), unless its producer stored it rounded
                bool rounded = round_to == DType::F32 || dy.dtype() == round_to || ys.holds_rounded_grad();
                Tensor dy_op = rounded ? dy : ops::round_operand(dy, round_to);
                bool accumulate = true;
                if (xs.requires_grad()) {
                  Tensor dx = xs.grad_for_update(&accumulate).flatten_to_2d();
                  ops::matmul(dy_op, false, w_op, false, dx, 1.0, accumulate ? 1.0 : 0.0);
                }
                if (ws.requires_grad()) {
                  Tensor& dw = ws.grad_for_update(&accumulate);
                  ops::matmul(dy_op, true, x_op, false, dw, 1.0, accumulate ? 1.0 : 0.0);
                }
                if (bs.requires_grad()) {
                  Tensor& db = bs.grad_for_update(&accumulate);
                  ops::sum_rows(dy, db, accumulate ? 1.0 : 0.0);
                }
              });
  }
  return out;
}

Variable add_bias(const Variable& x, const Variable& b) {
  require_defined("add_bias", {{"x", &x}, {"bias", &b}});
  const Tensor& xv = x.value();
  MT_CHECK(xv.dim() >= 1 && b.value().dim() == 1 && xv.size(-1) == b.value().size(0),
           "add_bias: expected x [..., C] and bias [C]; got x ", xv.str(), ", bias ", b.value().str());
  Tensor y = Tensor::empty({xv.numel() / xv.size(-1), xv.size(-1)}, xv.dtype(), xv.device());
  fill_rows_with(b.value(), y);
  ops::add_(y, xv.flatten_to_2d());
  Variable out(y.reshape(xv.shape()));
  if (any_requires_grad({&x, &b})) {
    record_op("add_bias", out, [xs = x.grad_slot(), bs = b.grad_slot()](const Tensor& dout) {
      Tensor dy = dout.flatten_to_2d();
      if (xs.requires_grad()) xs.accumulate(dout);
      if (bs.requires_grad()) ops::sum_rows(dy, bs.grad_ref(), 1.0);
    });
  }
  return out;
}

}  // namespace mt::ag
