// GELU, tanh approximation (Megatron's gelu_impl), for host and device code alike (the CPU and
// CUDA backends compute these expressions, in this order):
//   y = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
//   dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
// tanh(u) is the caller's: the CPU's vectorizable vtanh (runtime/cpu/vec_math.h), CUDA's tanh.
#pragma once

#include "runtime/rng.h"  // MT_HOST_DEVICE

namespace mt {

inline constexpr double kGeluSqrt2OverPi = 0.79788456080286535588;
inline constexpr double kGeluCubic = 0.044715;

// u, the argument of tanh.
template <class T>
MT_HOST_DEVICE inline T gelu_tanh_arg(T x) {
  return T(kGeluSqrt2OverPi) * (x + T(kGeluCubic) * x * x * x);
}

// y, given tanh_u = tanh(gelu_tanh_arg(x)).
template <class T>
MT_HOST_DEVICE inline T gelu_from_tanh(T x, T tanh_u) {
  return T(0.5) * x * (T(1) + tanh_u);
}

// dy/dx, given tanh_u = tanh(gelu_tanh_arg(x)).
template <class T>
MT_HOST_DEVICE inline T gelu_derivative_from_tanh(T x, T tanh_u) {
  T du = T(kGeluSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * x * x);
  return T(0.5) * (T(1) + tanh_u) + T(0.5) * x * (T(1) - tanh_u * tanh_u) * du;
}

}  // namespace mt
