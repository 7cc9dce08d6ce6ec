// Element types. Every op works in F32 and F64 on the CPU; BF16 and F16 are storage types
// (converted to and from F32; GEMM operands under mixed precision), I32/I64 hold token ids and
// indices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/float16.h"

namespace mt {

enum class DType : uint8_t { F32, F64, BF16, I32, I64, F16 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "f32", "f64", "bf16", "i32", "i64", "f16"
DType dtype_from_name(const std::string& name);
inline bool is_floating(DType t) {
  return t == DType::F32 || t == DType::F64 || t == DType::BF16 || t == DType::F16;
}
// The 16-bit float types (storage and GEMM operands only).
inline bool is_half_precision(DType t) {
  return t == DType::BF16 || t == DType::F16;
}
inline bool is_integer(DType t) {
  return t == DType::I32 || t == DType::I64;
}

// bfloat16 as a storage type on the host (conversions in float16.h, shared with the kernels).
struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  explicit bf16(float f) : bits(float_to_bf16_bits(f)) {}
  explicit operator float() const { return bf16_bits_to_float(bits); }
};

// C++ type -> DType, for typed access (Tensor::data<T>()).
template <class T>
struct dtype_of;
template <>
struct dtype_of<float> {
  static constexpr DType value = DType::F32;
};
template <>
struct dtype_of<double> {
  static constexpr DType value = DType::F64;
};
template <>
struct dtype_of<bf16> {
  static constexpr DType value = DType::BF16;
};
template <>
struct dtype_of<f16> {
  static constexpr DType value = DType::F16;
};
template <>
struct dtype_of<int32_t> {
  static constexpr DType value = DType::I32;
};
template <>
struct dtype_of<int64_t> {
  static constexpr DType value = DType::I64;
};

}  // namespace mt
