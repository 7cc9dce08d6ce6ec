// Softmax over the last dimension.
//   forward:  x [N,C] -> y [N,C],  y = exp(x - max) / sum exp(x - max)
//   backward: dx [N,C] += y * (dy - sum_c(dy*y))
#include <cmath>

#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/vec_math.h"
#include "runtime/dispatch.h"

namespace mt::cpu {

void CpuBackend::softmax_forward(const Tensor& x, Tensor& y) {
  dispatch_float(x.dtype(), "softmax", [&](auto zero) {
    using T = decltype(zero);
    int64_t n = x.size(0), c = x.size(1);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    parallel_for(n, 4 * c, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        const T* in = px + i * c;
        T* out = py + i * c;
        T mx = lane_max(in, c);
        double sum = exp_shifted_sum(in, mx, out, c);
        T inv = T(1.0 / sum);
        for (int64_t j = 0; j < c; ++j) out[j] *= inv;
      }
    });
  });
}

void CpuBackend::softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  dispatch_float(y.dtype(), "softmax_backward", [&](auto zero) {
    using T = decltype(zero);
    int64_t n = y.size(0), c = y.size(1);
    const T *py = y.data<T>(), *pdy = dy.data<T>();
    T* pdx = dx.data<T>();
    parallel_for(n, 4 * c, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        const T *yr = py + i * c, *gr = pdy + i * c;
        double dot = lane_sum<T>(c, [&](int64_t j) { return yr[j] * gr[j]; });
        T* out = pdx + i * c;
        for (int64_t j = 0; j < c; ++j) out[j] += yr[j] * (gr[j] - T(dot));
      }
    });
  });
}

}  // namespace mt::cpu
