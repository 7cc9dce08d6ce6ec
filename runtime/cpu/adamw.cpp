// AdamW, elementwise over one parameter tensor (w, g, m, v: same shape); the update formula is
// runtime/adamw_math.h's, shared with the CUDA kernel:
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  w -= lr (m/c1 / (sqrt(v/c2) + eps) + wd w)
#include "runtime/adamw_math.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/parallel.h"
#include "runtime/dispatch.h"

namespace mt::cpu {

void CpuBackend::adamw_step(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, const AdamWArgs& a) {
  dispatch_float(w.dtype(), "adamw_step", [&](auto zero) {
    using T = decltype(zero);
    T *pw = w.data<T>(), *pm = m.data<T>(), *pv = v.data<T>();
    const T* pg = g.data<T>();
    const AdamWScalars<T> s(a);
    parallel_for(w.numel(), 8, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) adamw_update(pw[i], pg[i], pm[i], pv[i], s);
    });
  });
}

}  // namespace mt::cpu
