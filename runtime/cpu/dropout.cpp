// Inverted dropout with a counter-based mask (nothing stored between forward and backward).
//   forward:  x, y any shape: y[i] = x[i] * keep(i) / (1 - p),  keep(i) = uniform_at(key, i) >= p
//   backward: dx[i] += dy[i] * keep(i) / (1 - p)   (the same mask, regenerated from the key)
#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/parallel.h"
#include "runtime/dispatch.h"
#include "runtime/dropout_mask.h"

namespace mt::cpu {
namespace {

// out[i] = in[i] * mask(i) (+ out[i] when accumulating).
template <class T>
void apply_dropout_mask(const T* in, T* out, int64_t n, double p, RngKey key, bool accumulate) {
  T scale = T(1.0 / (1.0 - p));
  float fp = float(p);
  parallel_for(n, 16, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      T m = dropout_keep_scale(key, uint64_t(i), fp, scale);
      out[i] = accumulate ? out[i] + in[i] * m : in[i] * m;
    }
  });
}

}  // namespace

void CpuBackend::dropout_forward(const Tensor& x, double p, RngKey key, Tensor& y) {
  dispatch_float(x.dtype(), "dropout", [&](auto zero) {
    using T = decltype(zero);
    apply_dropout_mask(x.data<T>(), y.data<T>(), x.numel(), p, key, false);
  });
}

void CpuBackend::dropout_backward(const Tensor& dy, double p, RngKey key, Tensor& dx) {
  dispatch_float(dy.dtype(), "dropout_backward", [&](auto zero) {
    using T = decltype(zero);
    apply_dropout_mask(dy.data<T>(), dx.data<T>(), dy.numel(), p, key, true);
  });
}

}  // namespace mt::cpu
