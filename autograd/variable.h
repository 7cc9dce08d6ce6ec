// Variable: a value tensor, its gradient and whether it wants one. Variables are handles
// (shared), so the tape, the registry and the model all see the same value and gradient.
//
// The gradient lives in a GradSlot that the Variable shares with the tape's backward closures:
// a closure that only accumulates into an input's gradient captures the slot, not the Variable,
// so it does not keep the input's value (an activation) alive.
#pragma once

#include <memory>
#include <string>

#include "runtime/tensor.h"

namespace mt {

class GradSlot {
 public:
  GradSlot() = default;
  bool requires_grad() const { return cell_ && cell_->requires_grad; }
  // The gradient; undefined until something was accumulated into it (or the registry set it).
  const Tensor& grad() const { return cell_->grad; }
  // The gradient, created as zeros shaped like the value if still undefined. Throws when the graph
  // that produced this value was already freed by an earlier backward() (see tape.h).
  Tensor& grad_ref() const;

 private:
  friend class Variable;
  friend class Tape;
  struct Cell {
    Tensor grad;
    Shape shape;
    DType dtype = DType::F32;
    Device device;
    bool requires_grad = false;
    bool pinned = false;          // lives in a registry flat buffer: never re-pointed
    bool graph_freed = false;     // its producer's backward already ran and was released
    const void* producer_tape = nullptr;  // the tape that recorded the op producing it
    std::string name;
  };
  explicit GradSlot(std::shared_ptr<Cell> cell) : cell_(std::move(cell)) {}
  std::shared_ptr<Cell> cell_;
};

class Variable {
 public:
  Variable() = default;
  explicit Variable(Tensor value, bool requires_grad = false, std::string name = {});

  bool defined() const { return impl_ != nullptr; }
  const Tensor& value() const { return impl_->value; }
  const Tensor& grad() const { return impl_->slot.grad(); }
  Tensor& grad_ref() const { return impl_->slot.grad_ref(); }
  const GradSlot& grad_slot() const { return impl_->slot; }
  bool requires_grad() const { return impl_ && impl_->slot.requires_grad(); }
  const std::string& name() const { return impl_->slot.cell_->name; }

  // Re-point the value or gradient (the registry's pack() does this once); refused for a pinned
  // parameter, whose value and gradient must stay views on the registry's flat buffers.
  void set_value(Tensor value) const;
  void set_grad(Tensor grad) const;
  void clear_grad() const;
  void set_requires_grad(bool on) const { impl_->slot.cell_->requires_grad = on; }
  void pin() const { impl_->slot.cell_->pinned = true; }
  bool pinned() const { return impl_->slot.cell_->pinned; }

  // Shorthands for the value's properties.
  const Shape& shape() const { return value().shape(); }
  DType dtype() const { return value().dtype(); }
  Device device() const { return value().device(); }
  bool same(const Variable& other) const { return impl_ == other.impl_; }

 private:
  friend class Tape;
  struct Impl {
    Tensor value;
    GradSlot slot;
  };
  std::shared_ptr<Impl> impl_;
};

}  // namespace mt
