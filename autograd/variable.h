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
  struct Cell;  // (below)

 public:
  GradSlot() = default;
  bool requires_grad() const { return cell_ && cell_->requires_grad; }
  // The gradient; undefined until something was accumulated into it (or the registry set it).
  // A pinned gradient marked unwritten (mark_unwritten) is zero-filled first.
  const Tensor& grad() const {
    if (cell_->grad_unwritten) write_zeros();
    return cell_->grad;
  }
  // The gradient, created as zeros shaped like the value if still undefined. Throws when the graph
  // that produced this value was already freed by an earlier backward() (see tape.h).
  Tensor& grad_ref() const;
  // For a backward that can write its result instead of adding it: the gradient, and in
  // *accumulate whether it already held a contribution (add to it) or was just created
  // uninitialised (write every element; a zero fill and a read pass saved). may_round: the
  // backward can also write the gradient rounded to 16 bits, and must where first_write_rounding
  // says so: when the gradient's reader rounds it to that dtype anyway (set_rounded_reader), it
  // gets an uninitialised gradient of dtype first_write_dtype (bf16/f16, or f32 to hold the
  // rounded values where the reader's GEMMs widen them: ops::rounded_operand_dtype).
  Tensor& grad_for_update(bool* accumulate, bool may_round = false) const;
  // The op reading this gradient multiplies it as a `lo` (bf16/f16) GEMM operand and nothing else
  // (a linear layer without bias under autocast): a first contribution may be stored already
  // rounded to lo. Its bits equal what the reader's own rounding would give; a later contribution
  // widens it back to f32 (exactly) and adds.
  void set_rounded_reader(DType lo) const;
  // grad += alpha * g (g shaped like the value): written as alpha * g when it is the first
  // contribution (one pass, no zero fill).
  void accumulate(const Tensor& g, double alpha = 1.0) const;
  // grad += g, where g (a whole gradient made ahead, of dtype first_write_dtype(true)) becomes
  // the gradient itself when it is the first contribution (no copy). rounded: g's values are
  // rounded to first_write_rounding(true) (as grad_for_update(&a, true)'s writer must).
  void take_or_add(const Tensor& g, bool rounded = false) const;
  // The dtype grad_for_update(&a, may_round) gives a first contribution.
  DType first_write_dtype(bool may_round) const;
  // The 16-bit dtype a first contribution written through grad_for_update(&a, may_round) must be
  // rounded to (its dtype, or f32 holding its values); F32: none.
  DType first_write_rounding(bool may_round) const;
  // Asks whether the gradient holds just a first contribution stored rounded for the reader
  // (bf16/f16, or f32 holding rounded values: the reader's own rounding would not change it), for a
  // backward function asking about its own output: it does not keep the slot alive, so the
  // function's node stays collectable (Tape::collect counts the slot's owners).
  class RoundedGradWatch {
   public:
    bool holds_rounded_grad() const {
      std::shared_ptr<Cell> cell = cell_.lock();
      return cell && cell->grad.defined() && cell->grad_rounded;
    }

   private:
    friend class GradSlot;
    std::weak_ptr<Cell> cell_;
  };
  RoundedGradWatch rounded_grad_watch() const {
    RoundedGradWatch w;
    w.cell_ = cell_;
    return w;
  }
  // A pinned gradient (a view on the registry's flat buffer) whose elements count as zeros until
  // something is accumulated into it: the first contribution writes it (grad_for_update gives
  // *accumulate false) instead of a zero fill and an add; a reader before that gets zeros.
  void mark_unwritten() const;

 private:
  friend class Variable;
  friend class Tape;
  void check_graph_alive() const;  // throws when the producing graph was freed (see tape.h)
  void write_zeros() const;        // an unwritten pinned gradient zero-filled (it is then written)
  struct Cell {
    Tensor grad;
    Shape shape;
    DType dtype = DType::F32;
    Device device;
    bool requires_grad = false;
    bool pinned = false;                  // its value lives in a registry flat buffer: never re-pointed
    bool grad_pinned = false;             // and its gradient too
    bool grad_unwritten = false;          // pinned, and its elements stand for zeros (mark_unwritten)
    bool graph_freed = false;             // its producer's backward already ran and was released
    DType rounded_reader = DType::F32;    // F32: none; else the 16-bit dtype the reader rounds to
    bool grad_rounded = false;            // grad is a first contribution rounded to rounded_reader
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
  // parameter, whose value (and, pinned with_grad, gradient) must stay views on the registry's
  // flat buffers.
  void set_value(Tensor value) const;
  void set_grad(Tensor grad) const;
  void clear_grad() const;
  void set_requires_grad(bool on) const { impl_->slot.cell_->requires_grad = on; }
  void pin(bool with_grad = true) const {
    impl_->slot.cell_->pinned = true;
    impl_->slot.cell_->grad_pinned = with_grad;
  }
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
