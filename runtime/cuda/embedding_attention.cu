// Embedding and causal self-attention, correct-first.
//   embedding  idx [B,T], wte [V,C] (a vocabulary shard), wpe [P,C] -> out [B,T,C]; backward:
//              dwte (+=) one thread per channel walking the tokens in order (deterministic, no
//              atomics), dwpe (+=) one thread per (position, channel) summing over the batch
//   attention  qkv [B,T,3C] -> out [B,T,C], lse [B,H,T]: one block per (b, h, query t) with the
//              t+1 scores in shared memory; dropout masks as runtime/ops.h states (Philox). The
//              backward runs per query row (dq, and the row's delta) then per key column (dk, dv
//              summed over the queries in order), recomputing probabilities from lse.
#include <vector>

#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device_math.cuh"
#include "runtime/dispatch.h"
#include "runtime/rng.h"

namespace mt::cuda {
namespace {

__device__ int64_t shard_row(int64_t id, int64_t rows, VocabShard shard) {
  int64_t r = id - shard.start;
  return r >= 0 && r < rows ? r : -1;
}

template <class T, class I>
__global__ void embedding_forward_kernel(const I* idx, const T* wte, int64_t v, VocabShard shard, const T* wpe,
                                         int64_t t_len, int64_t c, int64_t n, T* out) {
  int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n * c) return;
  int64_t tok = e / c, j = e % c;
  T value = T(0);
  if (wte) {
    int64_t r = shard_row(int64_t(idx[tok]), v, shard);
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
    int64_t r = shard_row(int64_t(idx[tok]), v, shard);
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

// Where head h of sample b reads q, k, v at position t: qkv[b, t, which*C + h*D + d].
struct Heads {
  int64_t t_len, c, d, n_head;
  __device__ int64_t at(int64_t b, int64_t t, int which, int64_t h) const {
    return (b * t_len + t) * 3 * c + which * c + h * d;
  }
};

__device__ uint64_t mask_base(const AttentionDropout& dr, int64_t n_head, int64_t b, int64_t h, int64_t t_len) {
  int64_t total = dr.total_heads > 0 ? dr.total_heads : n_head;
  return uint64_t(b * total + dr.first_head + h) * uint64_t(t_len) * uint64_t(t_len);
}

// block (b*H + h, t): scores s <= t in shared memory (t_len doubles)
template <class T>
__global__ void attention_forward_kernel(const T* qkv, Heads hd, AttentionDropout dr, T* out, T* lse) {
  extern __shared__ double p[];
  __shared__ double scratch[32];
  int64_t bh = blockIdx.x, t = blockIdx.y, b = bh / hd.n_head, h = bh % hd.n_head;
  double scale = 1.0 / sqrt(double(hd.d)), m = -CUDART_INF;
  const T* q = qkv + hd.at(b, t, 0, h);
  for (int64_t s = threadIdx.x; s <= t; s += blockDim.x) {
    const T* k = qkv + hd.at(b, s, 1, h);
    double dot = 0;
    for (int64_t d = 0; d < hd.d; ++d) dot += double(q[d]) * double(k[d]);
    p[s] = dot * scale;
    m = max(m, p[s]);
  }
  m = block_max(m, scratch);
  double sum = 0;
  for (int64_t s = threadIdx.x; s <= t; s += blockDim.x) sum += exp(p[s] - m);
  double l = m + log(block_sum(sum, scratch));
  uint64_t base = mask_base(dr, hd.n_head, b, h, hd.t_len) + uint64_t(t) * uint64_t(hd.t_len);
  double keep_scale = 1.0 / (1.0 - dr.p);
  for (int64_t s = threadIdx.x; s <= t; s += blockDim.x) {
    double prob = exp(p[s] - l);
    if (dr.p > 0) prob = uniform_at(dr.key, base + uint64_t(s)) >= float(dr.p) ? prob * keep_scale : 0.0;
    p[s] = prob;
  }
  __syncthreads();
  for (int64_t d = threadIdx.x; d < hd.d; d += blockDim.x) {
    double acc = 0;
    for (int64_t s = 0; s <= t; ++s) acc += p[s] * double(qkv[hd.at(b, s, 2, h) + d]);
    out[(b * hd.t_len + t) * hd.c + h * hd.d + d] = T(acc);
  }
  if (threadIdx.x == 0) lse[bh * hd.t_len + t] = T(l);
}

// The dropped, rescaled probability of (t, s), and its mask factor (keep / (1 - p), or 0).
template <class T>
__device__ double prob(const T* qkv, const Heads& hd, const T* lse, int64_t b, int64_t h, int64_t t, int64_t s) {
  const T *q = qkv + hd.at(b, t, 0, h), *k = qkv + hd.at(b, s, 1, h);
  double dot = 0;
  for (int64_t d = 0; d < hd.d; ++d) dot += double(q[d]) * double(k[d]);
  return exp(dot / sqrt(double(hd.d)) - double(lse[(b * hd.n_head + h) * hd.t_len + t]));
}
__device__ double mask_factor(const AttentionDropout& dr, const Heads& hd, int64_t b, int64_t h, int64_t t, int64_t s) {
  if (dr.p <= 0) return 1.0;
  uint64_t i = mask_base(dr, hd.n_head, b, h, hd.t_len) + uint64_t(t) * uint64_t(hd.t_len) + uint64_t(s);
  return uniform_at(dr.key, i) >= float(dr.p) ? 1.0 / (1.0 - dr.p) : 0.0;
}
template <class T>
__device__ double dot_dout_v(const T* dout, const T* qkv, const Heads& hd, int64_t b, int64_t h, int64_t t, int64_t s) {
  const T *g = dout + (b * hd.t_len + t) * hd.c + h * hd.d, *v = qkv + hd.at(b, s, 2, h);
  double dot = 0;
  for (int64_t d = 0; d < hd.d; ++d) dot += double(g[d]) * double(v[d]);
  return dot;
}

// One thread per (b, h, t): delta_t = dout_t . out_t; dq_t += scale sum_s dS(t,s) k_s.
template <class T>
__global__ void attention_dq_kernel(const T* dout, const T* qkv, const T* out, const T* lse, Heads hd,
                                    AttentionDropout dr, int64_t rows, T* delta, T* dqkv) {
  int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  int64_t t = r % hd.t_len, bh = r / hd.t_len, b = bh / hd.n_head, h = bh % hd.n_head;
  const T *g = dout + (b * hd.t_len + t) * hd.c + h * hd.d, *o = out + (b * hd.t_len + t) * hd.c + h * hd.d;
  double dl = 0;
  for (int64_t d = 0; d < hd.d; ++d) dl += double(g[d]) * double(o[d]);
  delta[r] = T(dl);
  double scale = 1.0 / sqrt(double(hd.d));
  T* dq = dqkv + hd.at(b, t, 0, h);
  for (int64_t s = 0; s <= t; ++s) {
    double ds =
        prob(qkv, hd, lse, b, h, t, s) * (dot_dout_v(dout, qkv, hd, b, h, t, s) * mask_factor(dr, hd, b, h, t, s) - dl);
    const T* k = qkv + hd.at(b, s, 1, h);
    for (int64_t d = 0; d < hd.d; ++d) dq[d] += T(scale * ds * double(k[d]));
  }
}

// One thread per (b, h, s): dk_s += scale sum_t dS(t,s) q_t; dv_s += sum_t P~(t,s) dout_t.
template <class T>
__global__ void attention_dkv_kernel(const T* dout, const T* qkv, const T* lse, const T* delta, Heads hd,
                                     AttentionDropout dr, int64_t rows, T* dqkv) {
  int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  int64_t s = r % hd.t_len, bh = r / hd.t_len, b = bh / hd.n_head, h = bh % hd.n_head;
  double scale = 1.0 / sqrt(double(hd.d));
  T *dk = dqkv + hd.at(b, s, 1, h), *dv = dqkv + hd.at(b, s, 2, h);
  for (int64_t t = s; t < hd.t_len; ++t) {
    double pr = prob(qkv, hd, lse, b, h, t, s), mf = mask_factor(dr, hd, b, h, t, s);
    double ds = pr * (dot_dout_v(dout, qkv, hd, b, h, t, s) * mf - double(delta[bh * hd.t_len + t]));
    const T *q = qkv + hd.at(b, t, 0, h), *g = dout + (b * hd.t_len + t) * hd.c + h * hd.d;
    for (int64_t d = 0; d < hd.d; ++d) {
      dk[d] += T(scale * ds * double(q[d]));
      dv[d] += T(pr * mf * double(g[d]));
    }
  }
}

}  // namespace

void CudaBackend::embedding_forward(const Tensor& idx, const Tensor* wte, const Tensor* wpe, const VocabShard& shard,
                                    Tensor& out) {
  int64_t n = idx.numel(), c = out.size(2), t_len = idx.size(1), v = wte ? wte->size(0) : 0;
  if (n == 0) return;
  dispatch_float_and_index(out.dtype(), idx.dtype(), "embedding", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    if (wte) check_ids<I>(idx, shard.total > 0 ? shard.total : v, "embedding");
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
      check_ids<I>(idx, shard.total > 0 ? shard.total : dwte->size(0), "embedding_backward");
      embedding_dwte_kernel<<<blocks_for(c), 256>>>(idx.data<I>(), dout.data<T>(), n, c, dwte->size(0), shard,
                                                    dwte->data<T>());
    }
    if (dwpe) embedding_dwpe_kernel<<<blocks_for(t_len * c), 256>>>(dout.data<T>(), bsz, t_len, c, dwpe->data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::attention_forward(const Tensor& qkv, int64_t n_head, const AttentionDropout& dropout, Tensor& out,
                                    Tensor& lse) {
  int64_t bsz = qkv.size(0), t_len = qkv.size(1), c = qkv.size(2) / 3;
  if (bsz * t_len == 0) return;
  Heads hd{t_len, c, c / n_head, n_head};
  dispatch_float(qkv.dtype(), "attention", [&](auto zero) {
    using T = decltype(zero);
    dim3 grid(unsigned(bsz * n_head), unsigned(t_len));
    attention_forward_kernel<<<grid, 128, size_t(t_len) * sizeof(double)>>>(qkv.data<T>(), hd, dropout, out.data<T>(),
                                                                            lse.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::attention_backward(const Tensor& dout, const Tensor& qkv, const Tensor& out, const Tensor& lse,
                                     int64_t n_head, const AttentionDropout& dropout, Tensor& dqkv) {
  int64_t bsz = qkv.size(0), t_len = qkv.size(1), c = qkv.size(2) / 3, rows = bsz * n_head * t_len;
  if (rows == 0) return;
  Heads hd{t_len, c, c / n_head, n_head};
  Tensor delta = Tensor::empty({rows}, qkv.dtype(), qkv.device());
  dispatch_float(qkv.dtype(), "attention_backward", [&](auto zero) {
    using T = decltype(zero);
    attention_dq_kernel<<<blocks_for(rows, 128), 128>>>(dout.data<T>(), qkv.data<T>(), out.data<T>(), lse.data<T>(), hd,
                                                        dropout, rows, delta.data<T>(), dqkv.data<T>());
    attention_dkv_kernel<<<blocks_for(rows, 128), 128>>>(dout.data<T>(), qkv.data<T>(), lse.data<T>(), delta.data<T>(),
                                                         hd, dropout, rows, dqkv.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

}  // namespace mt::cuda
