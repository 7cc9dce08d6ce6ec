// Fused softmax + cross-entropy. Probabilities are never stored: the forward keeps one
// log-sum-exp per row and the backward recomputes softmax straight into dlogits.
//   forward:  logits [N,V], targets [N] -> lse [N], target_logits [N] = logits[n, targets[n]]
//             (the loss is lse - target_logits)
//   backward: dlogits [N,V] += dlosses[n] * (exp(logits[n] - lse[n]) - onehot(targets[n]))
//             (= instead of += when not accumulating: one write pass, no zero fill before it)
//             rows with dlosses[n] == 0 (masked tokens) are skipped (zeroed when not accumulating);
//             a bf16/f16 dlogits (f32 logits, not accumulating) gets each row computed in f32 and
//             rounded as it is stored (autograd/variable.h set_rounded_reader); an f32 dlogits
//             can also get its entries rounded and kept in f32 (round_to, not accumulating: the
//             operand of a GEMM that widens 16-bit operands, ops::rounded_operand_dtype)
//   fused:    both for each row while it is in cache (dlosses known before the backward; the
//             whole vocabulary): the same lse, target_logits and dlogits bits as the two above
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
#include "runtime/cpu/stream_store.h"
#include "runtime/cpu/vec_math.h"
#include "runtime/dispatch.h"

namespace mt::cpu {
namespace {

// One exp per logit: a row's softmax is e[j] = exp(row[j] - mx) (mx its maximum) times
// exp(mx - lse); the forward's sum of the e[j] gives the lse, and the fused kernel keeps the e[j]
// for the gradient instead of computing exp(row[j] - lse) again. The backward, which has only the
// lse, forms the same e[j] and the same factor, so both give the same bits.

// log sum_j exp(row[j] - mx) + mx of one row of v logits whose maximum is mx; the e[j] are stored in e.
template <class T>
T row_logsumexp(const T* row, int64_t v, T mx, T* e) {
  return mx + T(std::log(exp_shifted_sum(row, mx, e, v)));
}

// The per-row buffer of a thread (a vocabulary row, in cache).
template <class T>
T* row_buffer(int64_t v) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < size_t(v)) buffer.resize(size_t(v));
  return buffer.data();
}

// Where a row's e[j] = exp(row[j] - mx) go: the gradient's own row when the gradient is written in
// T (e[j] is then scaled in place), else the thread's buffer.
template <class T, class O>
T* exp_row_for(O* out, int64_t v, bool accumulate) {
  if constexpr (std::is_same_v<O, T>)
    if (!accumulate) return out;
  return row_buffer<T>(v);
}

// The factor that turns e[j] = exp(row[j] - mx) into g * softmax: g exp(mx - lse).
template <class T>
T gradient_factor(T g, T mx, T l) {
  return g * vexp(mx - l);
}

// Stores a gradient entry as it is (the gradient in T, not rounded).
struct KeepValue {
  template <class T>
  T operator()(T x) const {
    return x;
  }
};

// One row of dlogits from e[j] = exp(row[j] - mx): out = f * e - g onehot(col) written (or added,
// `accumulate`; unrounded only), computed in T and stored as O through `round` (T -> O: KeepValue,
// a rounding to bf16/f16, or one held in f32). e may be out itself (written, O == T). g == 0:
// zeros (or nothing). `stream` (O != T only): out streamed past the caches (a gradient larger than
// the last-level cache, stream_store.h; the caller fences).
template <class T, class O, class Round>
void row_gradient(const T* e, int64_t v, T g, T f, int64_t col, bool accumulate, bool stream, Round round, O* out) {
  if (g == T(0)) {
    if (!accumulate) std::fill(out, out + v, round(T(0)));
    return;
  }
  if constexpr (std::is_same_v<O, T> && std::is_same_v<Round, KeepValue>) {
    if (accumulate)
      for (int64_t j = 0; j < v; ++j) out[j] += e[j] * f;
    else
      for (int64_t j = 0; j < v; ++j) out[j] = e[j] * f;
    if (col >= 0) out[col] -= g;
  } else if (std::is_same_v<O, T> || !stream) {
    // scaled and rounded in one pass; the target's entry with its onehot term (formed first: e may be out)
    O at_target = col >= 0 ? round(e[col] * f - g) : O{};
    for (int64_t j = 0; j < v; ++j) out[j] = round(e[j] * f);
    if (col >= 0) out[col] = at_target;
  } else {  // the same a chunk at a time in the cache, streamed to out (stream_store.h)
    stream_in_chunks(out, v, [&](O* chunk, int64_t j0, int64_t n) {
      for (int64_t j = 0; j < n; ++j) chunk[j] = round(e[j0 + j] * f);
      if (col >= j0 && col < j0 + n) chunk[col - j0] = round(e[col] * f - g);
    });
  }
}

// Calls f(O* dlogits, round) with dlogits' element type: T, or (for f32 logits) bf16 / f16; an
// f32 dlogits with round_to bf16/f16 gets its entries rounded to it and kept in f32.
template <class T, class F>
void with_gradient_type(Tensor& dlogits, DType round_to, F&& f) {
  if constexpr (std::is_same_v<T, float>) {  // (ops allows 16-bit gradients for f32 logits only)
    if (dlogits.dtype() == DType::BF16)
      return f(dlogits.data<bf16>(), [](float x) {
        bf16 b;
        b.bits = bf16_bits_vectorizable(x);
        return b;
      });
    if (dlogits.dtype() == DType::F16) return f(dlogits.data<f16>(), [](float x) { return f16(x); });
    if (round_to == DType::BF16) return f(dlogits.data<float>(), [](float x) { return bf16_rounded_vectorizable(x); });
    if (round_to == DType::F16) return f(dlogits.data<float>(), [](float x) { return float(f16(x)); });
  }
  f(dlogits.data<T>(), KeepValue{});
}

}  // namespace

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
        plse[i] = row_logsumexp(row, v, lane_max(row, v), row_buffer<T>(v));
        int64_t col = shard.row(int64_t(pt[i]), v);
        ptl[i] = col >= 0 ? row[col] : T(0);
      }
    });
  });
}

void CpuBackend::cross_entropy_backward(const Tensor& logits, const Tensor& targets, const VocabShard& shard,
                                        const Tensor& lse, const Tensor& dlosses, bool accumulate, Tensor& dlogits,
                                        DType round_to) {
  dispatch_float_and_index(logits.dtype(), targets.dtype(), "cross_entropy_backward", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    int64_t n = logits.size(0), v = logits.size(1);
    const I* pt = targets.data<I>();
    check_vocab_ids("cross_entropy_backward", "targets", pt, n, v, shard);
    const T *pl = logits.data<T>(), *plse = lse.data<T>(), *pdl = dlosses.data<T>();
    bool stream = worth_streaming(dlogits.nbytes());
    with_gradient_type<T>(dlogits, round_to, [&](auto* pd, auto round) {
      using O = std::remove_pointer_t<decltype(pd)>;
      parallel_for(n, 4 * v, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) {
          const T* row = pl + i * v;
          O* out = pd + i * v;
          T g = pdl[i];
          if (g == T(0)) {  // (nothing to exponentiate)
            row_gradient(row, v, g, T(0), -1, accumulate, false, round, out);
            continue;
          }
          T mx = lane_max(row, v);
          T* ex = exp_row_for<T>(out, v, accumulate);
          for (int64_t j = 0; j < v; ++j) ex[j] = vexp(row[j] - mx);
          row_gradient(ex, v, g, gradient_factor(g, mx, plse[i]), shard.row(int64_t(pt[i]), v), accumulate, stream,
                       round, out);
        }
        stream_fence();
      });
    });
  });
}

void CpuBackend::cross_entropy_fused(const Tensor& logits, const Tensor& targets, const Tensor& dlosses, Tensor& lse,
                                     Tensor& target_logits, Tensor& dlogits, DType round_to) {
  dispatch_float_and_index(logits.dtype(), targets.dtype(), "cross_entropy_fused", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    int64_t n = logits.size(0), v = logits.size(1);
    const I* pt = targets.data<I>();
    VocabShard whole;
    check_vocab_ids("cross_entropy_fused", "targets", pt, n, v, whole);
    const T *pl = logits.data<T>(), *pdl = dlosses.data<T>();
    T *plse = lse.data<T>(), *ptl = target_logits.data<T>();
    bool stream = worth_streaming(dlogits.nbytes());
    with_gradient_type<T>(dlogits, round_to, [&](auto* pd, auto round) {
      using O = std::remove_pointer_t<decltype(pd)>;
      parallel_for(n, 4 * v, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) {
          const T* row = pl + i * v;
          O* out = pd + i * v;  // (may be row itself: each entry is read before it is written)
          int64_t col = whole.row(int64_t(pt[i]), v);
          ptl[i] = col >= 0 ? row[col] : T(0);
          T mx = lane_max(row, v);
          T* ex = exp_row_for<T>(out, v, false);
          T l = row_logsumexp(row, v, mx, ex);
          plse[i] = l;
          row_gradient(ex, v, pdl[i], gradient_factor(pdl[i], mx, l), col, false, stream, round, out);
        }
        stream_fence();
      });
    });
  });
}

}  // namespace mt::cpu
