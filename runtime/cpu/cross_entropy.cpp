// Fused softmax + cross-entropy. Probabilities are never stored: the forward keeps one
// log-sum-exp per row and the backward recomputes softmax straight into dlogits.
//   forward:  logits [N,V], targets [N] -> lse [N], target_logits [N] = logits[n, targets[n]]
//             (the loss is lse - target_logits)
//   backward: dlogits [N,V] += dlosses[n] * (exp(logits[n] - lse[n]) - onehot(targets[n]))
//             rows with dlosses[n] == 0 (masked tokens) are skipped
// With a vocabulary shard (columns [start, start + V) of the vocabulary) a target in another
// shard has target logit 0 and no onehot term; the backward takes the lse of the whole row.
#include <cmath>

#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/index_check.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/vec_math.h"
#include "runtime/dispatch.h"

namespace mt::cpu {

void CpuBackend::cross_entropy_forward(const Tensor& logits, const Tensor& targets, const VocabShard& shard,
                                       Tensor& lse, Tensor& target_logits) {
  dispatch_float_and_index(logits.dtype(), targets.dtype(), "cross_entropy", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    int64_t n = logits.size(0), v = logits.size(1);
    const I* pt = targets.data<I>();
    check_vocab_ids("cross_entropy", "targets", pt, n, v, shard);
    const T* pl = logits.data<T>();
    T *plse = lse.data<T>(), *ptl = target_logits.data<T>();
    parallel_for(n, 4 * v, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        const T* row = pl + i * v;
        T mx = lane_max(row, v);
        double sum = lane_sum<T>(v, [&](int64_t j) { return vexp(row[j] - mx); });
        plse[i] = mx + T(std::log(sum));
        int64_t col = shard.row(int64_t(pt[i]), v);
        ptl[i] = col >= 0 ? row[col] : T(0);
      }
    });
  });
}

void CpuBackend::cross_entropy_backward(const Tensor& logits, const Tensor& targets, const VocabShard& shard,
                                        const Tensor& lse, const Tensor& dlosses, Tensor& dlogits) {
  dispatch_float_and_index(logits.dtype(), targets.dtype(), "cross_entropy_backward", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    int64_t n = logits.size(0), v = logits.size(1);
    const I* pt = targets.data<I>();
    check_vocab_ids("cross_entropy_backward", "targets", pt, n, v, shard);
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
        int64_t col = shard.row(int64_t(pt[i]), v);
        if (col >= 0) out[col] -= g;
      }
    });
  });
}

}  // namespace mt::cpu
