// Fused softmax + cross-entropy. Probabilities are never stored: the forward keeps one
// log-sum-exp per row and the backward recomputes softmax straight into dlogits.
//   forward:  logits [N,V], targets [N] -> losses [N] = lse[n] - logits[n, targets[n]], lse [N]
//   backward: dlogits [N,V] += dlosses[n] * (exp(logits[n] - lse[n]) - onehot(targets[n]))
//             rows with dlosses[n] == 0 (masked tokens) are skipped
#include <cmath>

#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/index_check.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/vec_math.h"
#include "runtime/dispatch.h"

namespace mt::cpu {

void CpuBackend::cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse) {
  dispatch_float_and_index(logits.dtype(), targets.dtype(), "cross_entropy", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    int64_t n = logits.size(0), v = logits.size(1);
    const I* pt = targets.data<I>();
    check_index_range("cross_entropy", "targets", pt, n, v);
    const T* pl = logits.data<T>();
    T *ploss = losses.data<T>(), *plse = lse.data<T>();
    parallel_for(n, 4 * v, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        const T* row = pl + i * v;
        T mx = lane_max(row, v);
        double sum = lane_sum<T>(v, [&](int64_t j) { return vexp(row[j] - mx); });
        T l = mx + T(std::log(sum));
        plse[i] = l;
        ploss[i] = l - row[pt[i]];
      }
    });
  });
}

void CpuBackend::cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                        const Tensor& dlosses, Tensor& dlogits) {
  dispatch_float_and_index(logits.dtype(), targets.dtype(), "cross_entropy_backward", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    int64_t n = logits.size(0), v = logits.size(1);
    const I* pt = targets.data<I>();
    check_index_range("cross_entropy_backward", "targets", pt, n, v);
    const T *pl = logits.data<T>(), *plse = lse.data<T>(), *pdl = dlosses.data<T>();
    T* pd = dlogits.data<T>();
    parallel_for(n, 4 * v, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        T g = pdl[i];
        if (g == T(0)) continue;
        const T* row = pl + i * v;
        T* out = pd + i * v;
        T l = plse[i];
        for (int64_t j = 0; j < v; ++j) out[j] += g * vexp(row[j] - l);
        out[pt[i]] -= g;
      }
    });
  });
}

}  // namespace mt::cpu
