#include "runtime/op_check.h"

namespace mt {

void OpCheck::fail(const std::string& expectation) const {
  std::string msg = std::string(op_) + ": " + expectation + "; got";
  for (size_t i = 0; i < args_.size(); ++i) {
    const Tensor& t = *args_[i].tensor;
    msg += std::string(i ? ", " : " ") + args_[i].name + " " + t.str();
    if (t.defined() && !t.device().is_cpu()) msg += " on " + t.device().str();
  }
  throw Error(msg);
}

void OpCheck::require(bool cond, const std::string& expectation) const {
  if (!cond) fail(expectation);
}

const OpCheck& OpCheck::same_float_dtype_and_device() const {
  const Tensor* first_float = nullptr;
  for (const Arg& a : args_) {
    const Tensor& t = *a.tensor;
    require(t.defined(), std::string("argument ") + a.name + " is undefined");
    require(t.device() == args_[0].tensor->device(), "all arguments on one device");
    if (a.index) {
      require(is_integer(t.dtype()), std::string(a.name) + " of an index dtype (i32 or i64)");
      continue;
    }
    require(t.dtype() == DType::F32 || t.dtype() == DType::F64, "float arguments in f32 or f64");
    if (!first_float) first_float = &t;
    require(t.dtype() == first_float->dtype(), "all float arguments of one dtype");
  }
  for (const Arg& o : args_) {
    if (!o.output) continue;
    for (const Arg& a : args_)
      if (&a != &o && o.tensor->overlaps(*a.tensor))
        fail(std::string("output ") + o.name + " not overlapping " + a.name + " in memory (no in-place use)");
  }
  return *this;
}

}  // namespace mt
