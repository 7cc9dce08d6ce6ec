// Calls a generic lambda with a value of the tensor's C++ element type, for kernels written once
// as templates: dispatch_float(dtype, "op", [&](auto zero) { using T = decltype(zero); ... }).
#pragma once

#include <cstdint>

#include "runtime/dtype.h"
#include "runtime/error.h"

namespace mt {

template <class F>
decltype(auto) dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::F32:
      return f(float{});
    case DType::F64:
      return f(double{});
    default:
      throw Error(detail::concat(op, ": dtype ", dtype_name(t), " not supported (expected f32 or f64)"));
  }
}

template <class F>
decltype(auto) dispatch_index(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::I32:
      return f(int32_t{});
    case DType::I64:
      return f(int64_t{});
    default:
      throw Error(detail::concat(op, ": index dtype ", dtype_name(t), " not supported (expected i32 or i64)"));
  }
}

// Kernels with a float tensor and an index tensor: f(float zero, index zero).
template <class F>
decltype(auto) dispatch_float_and_index(DType float_type, DType index_type, const char* op, F&& f) {
  return dispatch_float(float_type, op, [&](auto fzero) {
    return dispatch_index(index_type, op, [&](auto izero) { return f(fzero, izero); });
  });
}

}  // namespace mt
