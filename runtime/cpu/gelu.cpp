// GELU, tanh approximation (Megatron's gelu_impl):
//   y = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
//   dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
// x, y, dy, dx: any shape, same numel.
#include <cmath>

#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/vec_math.h"
#include "runtime/dispatch.h"

namespace mt::cpu {
namespace {
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kCubic = 0.044715;

// u = sqrt(2/pi) (x + 0.044715 x^3), the argument of tanh.
template <class T>
inline T gelu_arg(T x) {
  return T(kSqrt2OverPi) * (x + T(kCubic) * x * x * x);
}
}  // namespace

void CpuBackend::gelu_forward(const Tensor& x, Tensor& y) {
  dispatch_float(x.dtype(), "gelu", [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    parallel_for(x.numel(), 16, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        T v = px[i];
        py[i] = T(0.5) * v * (T(1) + vtanh(gelu_arg(v)));
      }
    });
  });
}

void CpuBackend::gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  dispatch_float(x.dtype(), "gelu_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    const T* pdy = dy.data<T>();
    T* pdx = dx.data<T>();
    parallel_for(x.numel(), 16, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        T v = px[i];
        T th = vtanh(gelu_arg(v));
        T du = T(kSqrt2OverPi) * (T(1) + T(3 * kCubic) * v * v);
        T grad = T(0.5) * (T(1) + th) + T(0.5) * v * (T(1) - th * th) * du;
        pdx[i] += grad * pdy[i];
      }
    });
  });
}

}  // namespace mt::cpu
