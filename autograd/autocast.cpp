#include "autograd/autocast.h"

#include "runtime/error.h"
#include "runtime/ops.h"

namespace mt::ag {
namespace {

thread_local DType t_dtype = DType::F32;
thread_local const ParameterRegistry* t_weights = nullptr;

}  // namespace

Autocast::Autocast(DType compute, ParameterRegistry* weights) : previous_dtype_(t_dtype), previous_weights_(t_weights) {
  MT_CHECK(compute == DType::F32 || is_half_precision(compute),
           "autocast: compute dtype must be bf16, f16 or f32; got ", dtype_name(compute));
  if (compute != DType::F32 && weights && weights->packed()) weights->refresh_half_copy(compute);
  t_dtype = compute;
  t_weights = weights && weights->packed() ? weights : nullptr;
}

Autocast::~Autocast() {
  t_dtype = previous_dtype_;
  t_weights = previous_weights_;
}

FullPrecision::FullPrecision() : previous_(t_dtype) {
  t_dtype = DType::F32;
}

FullPrecision::~FullPrecision() {
  t_dtype = previous_;
}

DType autocast_dtype() {
  return t_dtype;
}

Tensor autocast_operand(const Tensor& t, DType lo) {
  if (t.dtype() == lo) return t;
  if (t_weights)
    if (std::optional<Tensor> copy = t_weights->half_copy_of(t, lo)) return *copy;
  return ops::round_operand(t, lo);
}

}  // namespace mt::ag
