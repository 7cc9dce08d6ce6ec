// Token + position embedding (runtime/cpu/embedding.cpp).
//   forward:  idx [B,T], wte [V,C] (a vocabulary shard), wpe [P,C] (P >= T) -> out [B,T,C]
//             = wte[idx[b,t]] + wpe[t]: one thread per output element
//   backward: dwte [V,C] += dout scattered by idx: one thread per channel walking the tokens in
//             order (deterministic, no atomics); dwpe [P,C] += sum_b dout[b]: one thread per
//             (position, channel) summing over the batch
// Either table may be absent (its term is 0); ids are checked on the host first.
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/dispatch.h"

namespace mt::cuda {
namespace {

template <class T, class I>
__global__ void embedding_forward_kernel(const I* idx, const T* wte, int64_t v, VocabShard shard, const T* wpe,
                                         int64_t t_len, int64_t c, int64_t n, T* out) {
  int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n * c) return;
  int64_t tok = e / c, j = e % c;
  T value = T(0);
  if (wte) {
    int64_t r = shard.row(int64_t(idx[tok]), v);
    if (r >= 0) value += wte[r * c + j];
  }
  if (wpe) value += wpe[(tok % t_len) * c + j];
  out[e] = value;
}

template <class T, class I>
__global__ void embedding_dwte_kernel(const I* idx, const T* dout, int64_t n, int64_t c, int64_t v, VocabShard shard,
                                      T* dwte) {
  int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= c) return;
  for (int64_t tok = 0; tok < n; ++tok) {
    int64_t r = shard.row(int64_t(idx[tok]), v);
    if (r >= 0) dwte[r * c + j] += dout[tok * c + j];
  }
}

template <class T>
__global__ void embedding_dwpe_kernel(const T* dout, int64_t bsz, int64_t t_len, int64_t c, T* dwpe) {
  int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= t_len * c) return;
  int64_t t = e / c, j = e % c;
  T s = T(0);
  for (int64_t b = 0; b < bsz; ++b) s += dout[(b * t_len + t) * c + j];
  dwpe[e] += s;
}

}  // namespace

void CudaBackend::embedding_forward(const Tensor& idx, const Tensor* wte, const Tensor* wpe, const VocabShard& shard,
                                    Tensor& out) {
  int64_t n = idx.numel(), c = out.size(2), t_len = idx.size(1), v = wte ? wte->size(0) : 0;
  if (n == 0) return;
  dispatch_float_and_index(out.dtype(), idx.dtype(), "embedding", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    if (wte) check_vocab_ids<I>(idx, v, shard, "embedding");
    embedding_forward_kernel<<<blocks_for(n * c), 256>>>(idx.data<I>(), wte ? wte->data<T>() : nullptr, v, shard,
                                                         wpe ? wpe->data<T>() : nullptr, t_len, c, n, out.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::embedding_backward(const Tensor& dout, const Tensor& idx, const VocabShard& shard, Tensor* dwte,
                                     Tensor* dwpe) {
  int64_t n = idx.numel(), c = dout.size(2), t_len = idx.size(1), bsz = idx.size(0);
  if (n == 0) return;
  dispatch_float_and_index(dout.dtype(), idx.dtype(), "embedding_backward", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    if (dwte) {
      check_vocab_ids<I>(idx, dwte->size(0), shard, "embedding_backward");
      embedding_dwte_kernel<<<blocks_for(c), 256>>>(idx.data<I>(), dout.data<T>(), n, c, dwte->size(0), shard,
                                                    dwte->data<T>());
    }
    if (dwpe) embedding_dwpe_kernel<<<blocks_for(t_len * c), 256>>>(dout.data<T>(), bsz, t_len, c, dwpe->data<T>());
  });
  MT_CUDA_LAUNCHED();
}

}  // namespace mt::cuda
