// Token + position embedding.
//   forward:  idx [B,T], wte [V,C], wpe [P,C] (P >= T) -> out [B,T,C] = wte[idx[b,t]] + wpe[t]
//   backward: dwte [V,C] += scatter of dout by idx, dwpe [P,C] += sum over b of dout[b,t]
// Either table may be absent (its term is 0). A vocabulary shard holds rows [start, start + V):
// other ids get no word row and give no gradient (vocab-parallel embedding).
// The backward is deterministic: each thread owns a slice of the C channels and walks the tokens
// in order, so no two threads touch one element and the summation order never changes.
#include <cstring>

#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/index_check.h"
#include "runtime/cpu/parallel.h"
#include "runtime/dispatch.h"

namespace mt::cpu {

void CpuBackend::embedding_forward(const Tensor& idx, const Tensor* wte, const Tensor* wpe, const VocabShard& shard,
                                   Tensor& out) {
  dispatch_float_and_index(out.dtype(), idx.dtype(), "embedding", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    int64_t bsz = idx.size(0), t_len = idx.size(1), c = out.size(2), v = wte ? wte->size(0) : 0;
    const I* pi = idx.data<I>();
    if (wte) check_vocab_ids("embedding", "idx", pi, bsz * t_len, v, shard);
    const T* pte = wte ? wte->data<T>() : nullptr;
    const T* ppe = wpe ? wpe->data<T>() : nullptr;
    T* po = out.data<T>();
    parallel_for(bsz * t_len, c, [&](int64_t s, int64_t e) {
      for (int64_t n = s; n < e; ++n) {
        int64_t row = pte ? shard.row(int64_t(pi[n]), v) : -1;
        const T* te = row >= 0 ? pte + row * c : nullptr;
        const T* pe = ppe ? ppe + (n % t_len) * c : nullptr;
        T* o = po + n * c;
        for (int64_t j = 0; j < c; ++j) o[j] = (te ? te[j] : T(0)) + (pe ? pe[j] : T(0));
      }
    });
  });
}

void CpuBackend::embedding_backward(const Tensor& dout, const Tensor& idx, const VocabShard& shard, Tensor* dwte,
                                    Tensor* dwpe) {
  dispatch_float_and_index(dout.dtype(), idx.dtype(), "embedding_backward", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    int64_t bsz = idx.size(0), t_len = idx.size(1), c = dout.size(2), v = dwte ? dwte->size(0) : 0;
    const I* pi = idx.data<I>();
    if (dwte) check_vocab_ids("embedding_backward", "idx", pi, bsz * t_len, v, shard);
    const T* pd = dout.data<T>();
    T* pte = dwte ? dwte->data<T>() : nullptr;
    T* ppe = dwpe ? dwpe->data<T>() : nullptr;
    parallel_for(c, 2 * bsz * t_len, [&](int64_t c0, int64_t c1) {
      for (int64_t n = 0; n < bsz * t_len; ++n) {
        const T* g = pd + n * c;
        int64_t r = pte ? shard.row(int64_t(pi[n]), v) : -1;
        if (r >= 0) {
          T* row = pte + r * c;
          for (int64_t j = c0; j < c1; ++j) row[j] += g[j];
        }
        if (ppe) {
          T* row = ppe + (n % t_len) * c;
          for (int64_t j = c0; j < c1; ++j) row[j] += g[j];
        }
      }
    });
  });
}

}  // namespace mt::cpu
