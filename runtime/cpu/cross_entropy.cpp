// Fused softmax + cross-entropy. Probabilities are never stored: the forward keeps one
// log-sum-exp per row and the backward recomputes softmax straight into dlogits.
//   forward:  logits [N,V], targets [N] -> lse [N], target_logits [N] = logits[n, targets[n]]
//             (the loss is lse - target_logits)
//   backward: dlogits [N,V] += dlosses[n] * (exp(logits[n] - lse[n]) - onehot(targets[n]))
//             (= instead of += when not accumulating: one write pass, no zero fill before it)
//             rows with dlosses[n] == 0 (masked tokens) are skipped (zeroed when not accumulating);
//             a bf16/f16 dlogits (f32 logits, not accumulating) gets each row computed in f32 and
//             rounded as it is stored (autograd/variable.h set_rounded_reader)
// With a vocabulary shard (columns [start, start + V) of the vocabulary) a target in another
// shard has target logit 0 and no onehot term; the backward takes the lse of the whole row.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/half_convert.h"
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
                                        const Tensor& lse, const Tensor& dlosses, bool accumulate, Tensor& dlogits) {
  dispatch_float_and_index(logits.dtype(), targets.dtype(), "cross_entropy_backward", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    int64_t n = logits.size(0), v = logits.size(1);
    const I* pt = targets.data<I>();
    check_vocab_ids("cross_entropy_backward", "targets", pt, n, v, shard);
    const T *pl = logits.data<T>(), *plse = lse.data<T>(), *pdl = dlosses.data<T>();
    // Row i of dlogits, computed in T and stored as O: T (accumulated or written), or rounded to
    // bf16 / f16 as it is stored (written only). `round` maps a T value to O.
    auto rows = [&](auto* pd, auto round) {
      using O = std::remove_pointer_t<decltype(pd)>;
      parallel_for(n, 4 * v, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) {
          T g = pdl[i];
          const T* row = pl + i * v;
          O* out = pd + i * v;
          if (g == T(0)) {
            if (!accumulate) std::fill(out, out + v, round(T(0)));
            continue;
          }
          T l = plse[i];
          int64_t col = shard.row(int64_t(pt[i]), v);
          if constexpr (std::is_same_v<O, T>) {
            if (accumulate)
              for (int64_t j = 0; j < v; ++j) out[j] += g * vexp(row[j] - l);
            else
              for (int64_t j = 0; j < v; ++j) out[j] = g * vexp(row[j] - l);
            if (col >= 0) out[col] -= g;
          } else {  // the row in T first (a thread's buffer, in cache), then rounded into out
            thread_local std::vector<T> buffer;
            if (buffer.size() < size_t(v)) buffer.resize(size_t(v));
            T* b = buffer.data();
            for (int64_t j = 0; j < v; ++j) b[j] = g * vexp(row[j] - l);
            if (col >= 0) b[col] -= g;
            for (int64_t j = 0; j < v; ++j) out[j] = round(b[j]);
          }
        }
      });
    };
    if constexpr (std::is_same_v<T, float>) {  // (ops::cross_entropy_backward allows 16-bit for f32 only)
      if (dlogits.dtype() == DType::BF16)
        return rows(dlogits.data<bf16>(), [](float x) {
          bf16 b;
          b.bits = bf16_bits_vectorizable(x);
          return b;
        });
      if (dlogits.dtype() == DType::F16) return rows(dlogits.data<f16>(), [](float x) { return f16(x); });
    }
    rows(dlogits.data<T>(), [](T x) { return x; });
  });
}

}  // namespace mt::cpu
