// Causal multi-head self-attention, fused, flash-style on the CPU.
//
//   qkv  [B,T,3C]  packed projections: q = qkv[..., 0:C], k = [C:2C], v = [2C:3C];
//                  head h owns columns h*D..(h+1)*D of each, D = C/H
//   out  [B,T,C]   out[b,t,h*D:(h+1)*D] = sum_{s<=t} P[t,s] v[b,s,h]
//   lse  [B,H,T]   log-sum-exp of each scaled score row, kept for the backward
//   P = softmax_s(S), S[t,s] = q[t].k[s] / sqrt(D) for s <= t (causal)
//
// Work is split over (b, h) pairs, and each pair walks its queries in blocks of kBlock rows. A
// thread holds one score block [kBlock, T] at a time; no [T,T] matrix per head is ever stored.
// The backward recomputes P from q, k and lse:
//   dV += P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(dO * O)),  dQ += dS K / sqrt(D),
//   dK += dS^T Q / sqrt(D)
// Blocks only touch keys 0..(last query of the block), so the causal half is skipped.
#include <cmath>
#include <vector>

#include "runtime/cpu/blas.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/vec_math.h"
#include "runtime/dispatch.h"
#include "runtime/dropout_mask.h"

namespace mt::cpu {
namespace {

constexpr int64_t kBlock = 64;

// Pointers to one (batch, head) pair's slices; row strides: qkv 3C, out C.
template <class T>
struct HeadView {
  const T *q, *k, *v;
  int64_t ld_qkv, ld_out;
};

// Scores of one block -> probabilities, in place: S[r, j] for j <= i0 + r becomes
// exp(S - lse[r]); later keys (the causal mask) become 0. s is [rows, keys].
template <class T>
void probs_from_lse(T* s, int64_t i0, int64_t rows, int64_t keys, const T* lse) {
  for (int64_t r = 0; r < rows; ++r) {
    T* row = s + r * keys;
    int64_t valid = i0 + r + 1;
    for (int64_t j = 0; j < valid; ++j) row[j] = vexp(row[j] - lse[r]);
    for (int64_t j = valid; j < keys; ++j) row[j] = T(0);
  }
}

// Scores of one block -> probabilities and lse, in place (the forward): one exp per score.
//   lse[r] = log sum_{j <= i0+r} exp(S[r, j]);  S[r, j] -> exp(S[r, j] - lse[r]), masked -> 0
template <class T>
void softmax_rows_with_lse(T* s, int64_t i0, int64_t rows, int64_t keys, T* lse) {
  for (int64_t r = 0; r < rows; ++r) {
    T* row = s + r * keys;
    int64_t valid = i0 + r + 1;
    T mx = lane_max(row, valid);
    double sum = exp_shifted_sum(row, mx, row, valid);
    lse[r] = mx + T(std::log(sum));
    T inv = T(1.0 / sum);
    for (int64_t j = 0; j < valid; ++j) row[j] *= inv;
    for (int64_t j = valid; j < keys; ++j) row[j] = T(0);
  }
}

// Attention dropout of one head: the mask of score (t, s) is element stream_base + t*T + s.
struct HeadDropout {
  double p = 0;
  RngKey key;
  uint64_t stream_base = 0;
  bool on() const { return p > 0; }
};

// Head h of sample b (runtime/backend.h: AttentionDropout::mask_start).
HeadDropout head_dropout(const AttentionDropout& d, int64_t n_head, int64_t b, int64_t h, int64_t t_len) {
  return {d.p, d.key, d.mask_start(n_head, b, h, t_len)};
}

// m[r, j] = keep(t = i0 + r, s = j) / (1 - p) for the block's valid keys, 0 after them.
template <class T>
void dropout_block(const HeadDropout& dr, int64_t t_len, int64_t i0, int64_t rows, int64_t keys, T* m) {
  T scale = T(1.0 / (1.0 - dr.p));
  float p = float(dr.p);
  for (int64_t r = 0; r < rows; ++r) {
    uint64_t base = dr.stream_base + uint64_t(i0 + r) * uint64_t(t_len);
    int64_t valid = i0 + r + 1;
    for (int64_t j = 0; j < valid; ++j) m[r * keys + j] = dropout_keep_scale(dr.key, base + uint64_t(j), p, scale);
    for (int64_t j = valid; j < keys; ++j) m[r * keys + j] = T(0);
  }
}

template <class T>
void attention_forward_head(const HeadView<T>& hv, int64_t t_len, int64_t d, T scale, const HeadDropout& dr, T* out,
                            T* lse, T* s, T* m) {
  for (int64_t i0 = 0; i0 < t_len; i0 += kBlock) {
    int64_t rows = std::min(kBlock, t_len - i0), keys = i0 + rows;
    // S[rows, keys] = scale * Q[i0:i0+rows] K[0:keys]^T
    blas_gemm(false, true, rows, keys, d, scale, hv.q + i0 * hv.ld_qkv, hv.ld_qkv, hv.k, hv.ld_qkv, T(0), s, keys);
    softmax_rows_with_lse(s, i0, rows, keys, lse + i0);
    if (dr.on()) {  // P -> P * mask / (1 - p)
      dropout_block(dr, t_len, i0, rows, keys, m);
      for (int64_t e = 0; e < rows * keys; ++e) s[e] *= m[e];
    }
    // O[i0:i0+rows] = P V[0:keys]
    blas_gemm(false, false, rows, d, keys, T(1), s, keys, hv.v, hv.ld_qkv, T(0), out + i0 * hv.ld_out, hv.ld_out);
  }
}

// With dropout (mask M scaled by 1/(1-p)): O = (P*M) V, so dV += (P*M)^T dO, dP = (dO V^T) * M,
// and dS = P * (dP - delta) with delta = rowsum(dO * O) as without dropout.
template <class T>
void attention_backward_head(const HeadView<T>& hv, int64_t t_len, int64_t d, T scale, const HeadDropout& dr,
                             const T* dout, const T* out, const T* lse, T* dq, T* dk, T* dv, T* s, T* dp, T* m,
                             T* delta) {
  // delta[t] = sum_j dO[t,j] O[t,j]
  for (int64_t t = 0; t < t_len; ++t) {
    const T *g = dout + t * hv.ld_out, *o = out + t * hv.ld_out;
    delta[t] = T(lane_sum<T>(d, [&](int64_t j) { return g[j] * o[j]; }));
  }
  for (int64_t i0 = 0; i0 < t_len; i0 += kBlock) {
    int64_t rows = std::min(kBlock, t_len - i0), keys = i0 + rows;
    const T* q_blk = hv.q + i0 * hv.ld_qkv;
    const T* do_blk = dout + i0 * hv.ld_out;
    blas_gemm(false, true, rows, keys, d, scale, q_blk, hv.ld_qkv, hv.k, hv.ld_qkv, T(0), s, keys);
    probs_from_lse(s, i0, rows, keys, lse + i0);
    if (dr.on()) {
      // dV[0:keys] += (P*M)^T dO_blk, with P*M built in dp (free until the next GEMM)
      dropout_block(dr, t_len, i0, rows, keys, m);
      for (int64_t e = 0; e < rows * keys; ++e) dp[e] = s[e] * m[e];
      blas_gemm(true, false, keys, d, rows, T(1), dp, keys, do_blk, hv.ld_out, T(1), dv, hv.ld_qkv);
    } else {
      // dV[0:keys] += P^T dO_blk
      blas_gemm(true, false, keys, d, rows, T(1), s, keys, do_blk, hv.ld_out, T(1), dv, hv.ld_qkv);
    }
    // dP = dO_blk V[0:keys]^T (times the mask with dropout)
    blas_gemm(false, true, rows, keys, d, T(1), do_blk, hv.ld_out, hv.v, hv.ld_qkv, T(0), dp, keys);
    if (dr.on())
      for (int64_t e = 0; e < rows * keys; ++e) dp[e] *= m[e];
    // dS = P * (dP - delta)   (masked entries have P = 0)
    for (int64_t r = 0; r < rows; ++r) {
      T dl = delta[i0 + r];
      T *prow = s + r * keys, *dprow = dp + r * keys;
      for (int64_t j = 0; j < keys; ++j) dprow[j] = prow[j] * (dprow[j] - dl);
    }
    // dQ_blk += scale * dS K[0:keys];  dK[0:keys] += scale * dS^T Q_blk
    blas_gemm(false, false, rows, d, keys, scale, dp, keys, hv.k, hv.ld_qkv, T(1), dq + i0 * hv.ld_qkv, hv.ld_qkv);
    blas_gemm(true, false, keys, d, rows, scale, dp, keys, q_blk, hv.ld_qkv, T(1), dk, hv.ld_qkv);
  }
}

template <class T>
HeadView<T> head_view(const T* qkv, int64_t b, int64_t h, int64_t t_len, int64_t c, int64_t d) {
  const T* base = qkv + b * t_len * 3 * c + h * d;
  return {base, base + c, base + 2 * c, 3 * c, c};
}

}  // namespace

void CpuBackend::attention_forward(const Tensor& qkv, int64_t n_head, const AttentionDropout& dropout, Tensor& out,
                                   Tensor& lse) {
  dispatch_float(qkv.dtype(), "attention", [&](auto zero) {
    using T = decltype(zero);
    int64_t bsz = qkv.size(0), t_len = qkv.size(1), c = qkv.size(2) / 3, d = c / n_head;
    T scale = T(1.0 / std::sqrt(double(d)));
    const T* pqkv = qkv.data<T>();
    T *pout = out.data<T>(), *plse = lse.data<T>();
    parallel_for(bsz * n_head, t_len * t_len * d, [&](int64_t p0, int64_t p1) {
      size_t block = size_t(std::min(kBlock, t_len) * t_len);
      std::vector<T> s(block), m(dropout.p > 0 ? block : 0);
      for (int64_t p = p0; p < p1; ++p) {
        int64_t b = p / n_head, h = p % n_head;
        HeadDropout dr = head_dropout(dropout, n_head, b, h, t_len);
        attention_forward_head(head_view(pqkv, b, h, t_len, c, d), t_len, d, scale, dr, pout + b * t_len * c + h * d,
                               plse + p * t_len, s.data(), m.data());
      }
    });
  });
}

void CpuBackend::attention_backward(const Tensor& dout, const Tensor& qkv, const Tensor& out, const Tensor& lse,
                                    int64_t n_head, const AttentionDropout& dropout, Tensor& dqkv) {
  dispatch_float(qkv.dtype(), "attention_backward", [&](auto zero) {
    using T = decltype(zero);
    int64_t bsz = qkv.size(0), t_len = qkv.size(1), c = qkv.size(2) / 3, d = c / n_head;
    T scale = T(1.0 / std::sqrt(double(d)));
    const T *pqkv = qkv.data<T>(), *pdout = dout.data<T>(), *pout = out.data<T>(), *plse = lse.data<T>();
    T* pdqkv = dqkv.data<T>();
    parallel_for(bsz * n_head, 3 * t_len * t_len * d, [&](int64_t p0, int64_t p1) {
      size_t block = size_t(std::min(kBlock, t_len) * t_len);
      std::vector<T> s(block), dp(block), m(dropout.p > 0 ? block : 0), delta(static_cast<size_t>(t_len));
      for (int64_t p = p0; p < p1; ++p) {
        int64_t b = p / n_head, h = p % n_head;
        T* dq = pdqkv + b * t_len * 3 * c + h * d;
        int64_t o = b * t_len * c + h * d;
        HeadDropout dr = head_dropout(dropout, n_head, b, h, t_len);
        attention_backward_head(head_view(pqkv, b, h, t_len, c, d), t_len, d, scale, dr, pdout + o, pout + o,
                                plse + p * t_len, dq, dq + c, dq + 2 * c, s.data(), dp.data(), m.data(), delta.data());
      }
    });
  });
}

}  // namespace mt::cpu
