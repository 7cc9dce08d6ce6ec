// Causal multi-head self-attention, correct-first (runtime/cpu/attention.cpp: the math).
//   qkv  [B,T,3C]  packed projections q, k, v; head h owns columns h*D..(h+1)*D of each, D = C/H
//   out  [B,T,C]   out[b,t,h] = sum_{s<=t} P~[t,s] v[b,s,h], P~ the dropped, rescaled softmax
//   lse  [B,H,T]   log-sum-exp of each scaled score row, kept for the backward
// Forward: one block per (b, h, query t) with the t+1 scores in shared memory; dropout masks as
// runtime/ops.h states (runtime/dropout_mask.h, the CPU's Philox masks). The backward runs per
// query row (dq, and the row's delta) then per key column (dk, dv summed over the queries in
// order), recomputing probabilities from lse; dqkv [B,T,3C] accumulates.
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device_math.cuh"
#include "runtime/dispatch.h"
#include "runtime/dropout_mask.h"

namespace mt::cuda {
namespace {

// Where head h of sample b reads q, k, v at position t: qkv[b, t, which*C + h*D + d].
struct Heads {
  int64_t t_len, c, d, n_head;
  __device__ int64_t at(int64_t b, int64_t t, int which, int64_t h) const {
    return (b * t_len + t) * 3 * c + which * c + h * d;
  }
};

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
  uint64_t base = dr.mask_start(hd.n_head, b, h, hd.t_len) + uint64_t(t) * uint64_t(hd.t_len);
  double keep_scale = 1.0 / (1.0 - dr.p);
  for (int64_t s = threadIdx.x; s <= t; s += blockDim.x) {
    double prob = exp(p[s] - l);
    if (dr.p > 0) prob *= dropout_keep_scale(dr.key, base + uint64_t(s), float(dr.p), keep_scale);
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

// The probability of (t, s), recomputed from lse, and its mask factor (keep / (1 - p), or 0).
template <class T>
__device__ double prob(const T* qkv, const Heads& hd, const T* lse, int64_t b, int64_t h, int64_t t, int64_t s) {
  const T *q = qkv + hd.at(b, t, 0, h), *k = qkv + hd.at(b, s, 1, h);
  double dot = 0;
  for (int64_t d = 0; d < hd.d; ++d) dot += double(q[d]) * double(k[d]);
  return exp(dot / sqrt(double(hd.d)) - double(lse[(b * hd.n_head + h) * hd.t_len + t]));
}
__device__ double mask_factor(const AttentionDropout& dr, const Heads& hd, int64_t b, int64_t h, int64_t t, int64_t s) {
  if (dr.p <= 0) return 1.0;
  uint64_t i = dr.mask_start(hd.n_head, b, h, hd.t_len) + uint64_t(t) * uint64_t(hd.t_len) + uint64_t(s);
  return dropout_keep_scale(dr.key, i, float(dr.p), 1.0 / (1.0 - dr.p));
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
                                     int64_t n_head, const AttentionDropout& dropout, bool accumulate, Tensor& dqkv) {
  int64_t bsz = qkv.size(0), t_len = qkv.size(1), c = qkv.size(2) / 3, rows = bsz * n_head * t_len;
  if (rows == 0) return;
  if (!accumulate) fill(dqkv, 0.0);  // the kernels add their sums
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
