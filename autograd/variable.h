// Variable: a value tensor, its gradient and whether it wants one. Variables are handles
// (shared), so the tape, the registry and the model all see the same value and gradient, and
// the registry can re-point a parameter's value and grad into its flat buffers.
#pragma once

#include <memory>
#include <string>

#include "runtime/tensor.h"

namespace mt {

class Variable {
 public:
  Variable() = default;
  explicit Variable(Tensor value, bool requires_grad = false, std::string name = {});

  bool defined() const { return impl_ != nullptr; }
  const Tensor& value() const { return impl_->value; }
  // The gradient; undefined until something was accumulated into it (or the registry set it).
  const Tensor& grad() const { return impl_->grad; }
  // The gradient, created as zeros (same shape, dtype and device as the value) if still undefined.
  Tensor& grad_ref() const;
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  const std::string& name() const { return impl_->name; }

  void set_value(Tensor value) const { impl_->value = std::move(value); }
  void set_grad(Tensor grad) const { impl_->grad = std::move(grad); }
  void clear_grad() const { impl_->grad = Tensor(); }
  void set_requires_grad(bool on) const { impl_->requires_grad = on; }

  // Shorthands for the value's properties.
  const Shape& shape() const { return value().shape(); }
  DType dtype() const { return value().dtype(); }
  Device device() const { return value().device(); }
  bool same(const Variable& other) const { return impl_ == other.impl_; }

 private:
  struct Impl {
    Tensor value, grad;
    bool requires_grad = false;
    std::string name;
  };
  std::shared_ptr<Impl> impl_;
};

}  // namespace mt
