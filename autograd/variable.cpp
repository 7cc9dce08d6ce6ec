#include "autograd/variable.h"

#include "runtime/ops.h"

namespace mt {

DType GradSlot::first_write_rounding(bool may_round) const {
  bool rounded = may_round && !cell_->grad_pinned && cell_->rounded_reader != DType::F32 && cell_->dtype == DType::F32;
  return rounded ? cell_->rounded_reader : DType::F32;
}

DType GradSlot::first_write_dtype(bool may_round) const {
  DType lo = first_write_rounding(may_round);
  return lo == DType::F32 ? cell_->dtype : ops::rounded_operand_dtype(lo, cell_->device);
}

Tensor& GradSlot::grad_for_update(bool* accumulate, bool may_round) const {
  check_graph_alive();
  if (cell_->grad_unwritten) {  // the pinned view, written whole by the caller
    cell_->grad_unwritten = false;
    *accumulate = false;
    return cell_->grad;
  }
  *accumulate = cell_->grad.defined();
  if (*accumulate) return grad_ref();  // (widened first if a rounded contribution is there)
  cell_->grad = Tensor::empty(cell_->shape, first_write_dtype(may_round), cell_->device);
  cell_->grad_rounded = first_write_rounding(may_round) != DType::F32;  // (the writer rounds it)
  return cell_->grad;
}

void GradSlot::take_or_add(const Tensor& g, bool rounded) const {
  check_graph_alive();
  MT_CHECK(g.shape() == cell_->shape, "take_or_add: a gradient ", g.str(), " for a value of shape ",
           shape_str(cell_->shape));
  if (!cell_->grad.defined()) {
    cell_->grad = g;
    cell_->grad_rounded = rounded || g.dtype() != cell_->dtype;
    return;
  }
  Tensor& grad = grad_ref();
  ops::add_(grad, g.dtype() == grad.dtype() ? g : g.to(grad.dtype()));
}

void GradSlot::accumulate(const Tensor& g, double alpha) const {
  bool add = true;
  Tensor& grad = grad_for_update(&add);
  ops::axpby(alpha, g, add ? 1.0 : 0.0, grad);
}

void GradSlot::mark_unwritten() const {
  MT_CHECK(cell_->grad_pinned && cell_->grad.defined(), "mark_unwritten: '", cell_->name,
           "' has no pinned gradient (only a registry's flat gradient buffer can stand for zeros)");
  cell_->grad_unwritten = true;
}

void GradSlot::write_zeros() const {
  cell_->grad.zero_();
  cell_->grad_unwritten = false;
}

void GradSlot::set_rounded_reader(DType lo) const {
  cell_->rounded_reader = lo;
}

void GradSlot::check_graph_alive() const {
  MT_CHECK(!cell_->graph_freed, "backward: '", cell_->name.empty() ? "a value" : cell_->name,
           "' was produced by ops whose backward already ran in an earlier backward() call and was freed; "
           "compute the losses in one graph (add them) or run the forward again");
}

Tensor& GradSlot::grad_ref() const {
  check_graph_alive();
  if (cell_->grad_unwritten) write_zeros();
  if (!cell_->grad.defined()) cell_->grad = Tensor::zeros(cell_->shape, cell_->dtype, cell_->device);
  if (cell_->grad.dtype() != cell_->dtype) cell_->grad = cell_->grad.to(cell_->dtype);  // a rounded first write
  cell_->grad_rounded = false;                                                          // (the caller adds to it)
  return cell_->grad;
}

Variable::Variable(Tensor value, bool requires_grad, std::string name) : impl_(std::make_shared<Impl>()) {
  auto cell = std::make_shared<GradSlot::Cell>();
  cell->shape = value.shape();
  cell->dtype = value.dtype();
  cell->device = value.device();
  cell->requires_grad = requires_grad;
  cell->name = std::move(name);
  impl_->value = std::move(value);
  impl_->slot = GradSlot(std::move(cell));
}

void Variable::set_value(Tensor value) const {
  GradSlot::Cell& c = *impl_->slot.cell_;
  MT_CHECK(!c.pinned, "parameter '", c.name, "' lives in the registry's flat buffer; copy into value() instead");
  MT_CHECK(value.shape() == c.shape && value.dtype() == c.dtype, "set_value of '", c.name, "': ", value.str(),
           " does not match ", dtype_name(c.dtype), shape_str(c.shape));
  impl_->value = std::move(value);
}

void Variable::set_grad(Tensor grad) const {
  GradSlot::Cell& c = *impl_->slot.cell_;
  MT_CHECK(!c.grad_pinned, "parameter '", c.name,
           "' keeps its gradient in the registry's flat buffer; zero it instead");
  MT_CHECK(!grad.defined() || (grad.shape() == c.shape && grad.dtype() == c.dtype), "set_grad of '", c.name,
           "': ", grad.str(), " does not match ", dtype_name(c.dtype), shape_str(c.shape));
  c.grad = std::move(grad);
  c.grad_rounded = false;
}

void Variable::clear_grad() const {
  set_grad(Tensor());
}

}  // namespace mt
