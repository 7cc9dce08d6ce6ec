#include "autograd/variable.h"

namespace mt {

Variable::Variable(Tensor value, bool requires_grad, std::string name) : impl_(std::make_shared<Impl>()) {
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
  impl_->name = std::move(name);
}

Tensor& Variable::grad_ref() const {
  if (!impl_->grad.defined()) impl_->grad = Tensor::zeros(value().shape(), value().dtype(), value().device());
  return impl_->grad;
}

}  // namespace mt
