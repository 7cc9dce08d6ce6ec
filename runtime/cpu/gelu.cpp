// GELU, tanh approximation (the formula: runtime/gelu_math.h, shared with the CUDA kernel), with
// the vectorizable vtanh. x, y, dy, dx: any shape, same numel.
//   forward:  y = 0.5 x (1 + tanh u)
//   backward: dx += gelu'(x) dy (or dx = gelu'(x) dy, not accumulating)
#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/vec_math.h"
#include "runtime/dispatch.h"
#include "runtime/gelu_math.h"

namespace mt::cpu {

void CpuBackend::gelu_forward(const Tensor& x, Tensor& y) {
  dispatch_float(x.dtype(), "gelu", [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    parallel_for(x.numel(), 16, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        T v = px[i];
        py[i] = gelu_from_tanh(v, vtanh(gelu_tanh_arg(v)));
      }
    });
  });
}

void CpuBackend::gelu_backward(const Tensor& x, const Tensor& dy, bool accumulate, Tensor& dx) {
  dispatch_float(x.dtype(), "gelu_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    const T* pdy = dy.data<T>();
    T* pdx = dx.data<T>();
    auto grad = [&](int64_t i) { return gelu_derivative_from_tanh(px[i], vtanh(gelu_tanh_arg(px[i]))) * pdy[i]; };
    parallel_for(x.numel(), 16, [&](int64_t s, int64_t e) {
      if (accumulate)
        for (int64_t i = s; i < e; ++i) pdx[i] += grad(i);
      else
        for (int64_t i = s; i < e; ++i) pdx[i] = grad(i);
    });
  });
}

}  // namespace mt::cpu
