// AdamW, elementwise over one parameter tensor (w, g, m, v: same shape):
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  w -= lr (m/c1 / (sqrt(v/c2) + eps) + wd w)
#include <cmath>

#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/parallel.h"
#include "runtime/dispatch.h"

namespace mt::cpu {

void CpuBackend::adamw_step(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, const AdamWArgs& a) {
  dispatch_float(w.dtype(), "adamw_step", [&](auto zero) {
    using T = decltype(zero);
    T *pw = w.data<T>(), *pm = m.data<T>(), *pv = v.data<T>();
    const T* pg = g.data<T>();
    T b1 = T(a.beta1), b2 = T(a.beta2), lr = T(a.lr), wd = T(a.weight_decay), eps = T(a.eps);
    T inv_c1 = T(1.0 / a.correction1), inv_c2 = T(1.0 / a.correction2);
    parallel_for(w.numel(), 8, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        T gi = pg[i];
        pm[i] = b1 * pm[i] + (T(1) - b1) * gi;
        pv[i] = b2 * pv[i] + (T(1) - b2) * gi * gi;
        pw[i] -= lr * ((pm[i] * inv_c1) / (std::sqrt(pv[i] * inv_c2) + eps) + wd * pw[i]);
      }
    });
  });
}

}  // namespace mt::cpu
