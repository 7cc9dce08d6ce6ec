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
// Blocks only touch keys 0..(last query of the block), and the tile GEMMs skip the micro-tiles
// above the diagonal, so the causal half is skipped.
//
// While a head's backward runs, the rows of dqkv the next one writes are fetched for writing
// (NextHeadPrefetch). The six products run on own register-blocked micro-kernels (runtime/cpu/attention_tile_gemm.h;
// operand layouts in attention_operands.h): the head size D = 32..128 is too small a k or n for
// CBLAS to reach its speed. The scores are computed in base 2, S2 = S log2 e (the product's scale
// log2(e) / sqrt(D)), so each exp is a 2^x (vexp2, vec_math.h) with no multiply by log2 e and no
// two-part reduction of its own; lse stays natural in the tensor. The softmax's passes over a block
// ride on the products' epilogues while the sums are in registers: the forward's scores also give
// E = 2^(S2 - shift2), each row shifted by its diagonal score, and the rows' sums, and its P V
// divides by the sums; the backward's scores give P = 2^(S2 - lse log2 e) and its dO V^T gives dS
// (without dropout). With a bf16 qkv (precision: bf16) the products take bf16 operands
// (q, k, v, P, dO, dS rounded to bf16) with f32 accumulation on AVX512-BF16 where the CPU has it;
// softmax, lse, delta, out and dqkv stay f32.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "runtime/cpu/attention_operands.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/vec_math.h"
#include "runtime/dispatch.h"
#include "runtime/dropout_mask.h"

namespace mt::cpu {
namespace {

constexpr int64_t kBlock = 64;  // query rows per block; even (bf16 pairs of rows)
constexpr double kLog2e = 1.44269504088896340736, kLn2 = 0.693147180559945309417;

// The products' scales: dS's products (dQ, dK) take 1/sqrt(D); the scores are made in base 2,
// S2 = q.k log2(e) / sqrt(D), for the exps 2^(S2 - v) (file comment).
template <class T>
struct Scales {
  T natural, base2;
  explicit Scales(int64_t d) : natural(T(1.0 / std::sqrt(double(d)))), base2(T(kLog2e / std::sqrt(double(d)))) {}
};

// The rows of dqkv the next head's backward will write, fetched for writing (prefetchw) a share at a
// time between the current head's products. A head's dQ, dK, dV rows lie 3C apart (a new 4 KiB page
// every row, which the hardware prefetchers do not follow), and a store to a line not in the cache
// waits for it: one thread's backward head took 157 us at B = 8 against 122 at B = 1, where dqkv
// stays in the L2; with these prefetches `bench ops`' f32 forward+backward is ~6% faster (two
// threads). Prefetching the rows the next head reads (q, k, v, dO, O) changed nothing.
template <class T>
class NextHeadPrefetch {
 public:
  // The next head's rows: its dQ columns at dq of rows ld apart, dK and dV c and 2c further, d wide
  // each; over `shares` calls of step().
  void start(const T* dq, int64_t ld, int64_t c, int64_t d, int64_t rows, int64_t shares) {
    dq_ = dq;
    ld_ = ld;
    c_ = c;
    bytes_ = d * int64_t(sizeof(T));
    pieces_ = 3 * rows;
    next_ = 0;
    per_share_ = (pieces_ + shares - 1) / std::max<int64_t>(shares, 1);
  }
  void stop() { pieces_ = 0; }
  // The next share of the pieces, row by row (dQ, dK, dV of a row: ascending addresses).
  void step() {
    for (int64_t end = std::min(next_ + per_share_, pieces_); next_ < end; ++next_) {
      const char* piece = reinterpret_cast<const char*>(dq_ + (next_ / 3) * ld_ + (next_ % 3) * c_);
      for (int64_t b = 0; b < bytes_; b += 64) __builtin_prefetch(piece + b, 1, 2);
      if ((reinterpret_cast<uintptr_t>(piece) | uintptr_t(bytes_)) % 64)  // a line the loop missed
        __builtin_prefetch(piece + bytes_ - 1, 1, 2);
    }
  }

 private:
  const T* dq_ = nullptr;
  int64_t ld_ = 0, c_ = 0, bytes_ = 0, pieces_ = 0, next_ = 0, per_share_ = 0;
};

// A score block's rows: s[r * ld + j], j < keys; r < rows, the block's queries i0 + r.
template <class T>
struct Block {
  T* s;
  int64_t ld;
};

// Zeroes the causally masked entries S[r, j], i0 + r < j < keys, of a block whose valid entries
// the products' epilogues computed.
template <class T>
void zero_masked(Block<T> b, int64_t i0, int64_t rows, int64_t keys) {
  attn::block_zero_tails(b.s, b.ld, i0 + 1, rows, keys);
}

// lse = (shift2 + log2 sum) ln 2, natural (the tensor's), from a row's base-2 shift and its sum
// of 2^(S2 - shift2); one rounding, in f64.
template <class T>
T natural_lse(T shift2, double sum) {
  return T((double(shift2) + std::log2(sum)) * kLn2);
}

// Base-2 scores of one block -> unnormalised probabilities and lse, in place (the forward's way
// for a block where some row's maximum lies too far above its diagonal score,
// attention_forward_head): one exp per score; the normalisation 1/sum moves to the block's output
// rows (rows x D, not rows x keys).
//   S2[r, j] -> 2^(S2[r, j] - max_j S2[r, j]), masked -> 0;  inv_sum[r] = 1 / sum_{j <= i0+r} of them;
//   lse[r] = natural_lse(max, that sum) = log sum_{j <= i0+r} exp(S[r, j])
// vmax: the rows' maxima over the valid keys in 16 lanes a row (the scores' RowMax epilogue).
template <class T>
void exp_rows_with_lse(Block<T> b, int64_t i0, int64_t rows, int64_t keys, const T* vmax, T* lse, T* inv_sum) {
  double sum[kBlock];
  T max2[kBlock];
  attn::block_exp_rows(b.s, b.ld, i0 + 1, rows, keys, vmax, max2, sum);
  for (int64_t r = 0; r < rows; ++r) {  // apart from the row loop: independent, pipelined
    lse[r] = natural_lse(max2[r], sum[r]);
    inv_sum[r] = T(1.0 / sum[r]);
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
void dropout_block(const HeadDropout& dr, int64_t t_len, int64_t i0, int64_t rows, int64_t keys, Block<T> m) {
  T scale = T(1.0 / (1.0 - dr.p));
  float p = float(dr.p);
  for (int64_t r = 0; r < rows; ++r) {
    uint64_t base = dr.stream_base + uint64_t(i0 + r) * uint64_t(t_len);
    int64_t valid = i0 + r + 1;
    T* mr = m.s + r * m.ld;
    for (int64_t j = 0; j < valid; ++j) mr[j] = dropout_keep_scale(dr.key, base + uint64_t(j), p, scale);
    for (int64_t j = valid; j < keys; ++j) mr[j] = T(0);
  }
}

// y[r, j] = x[r, j] * m[r, j] on the block's rows and keys (x and y may be the same block).
template <class T>
void apply_mask(Block<T> x, Block<T> m, int64_t rows, int64_t keys, Block<T> y) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < keys; ++j) y.s[r * y.ld + j] = x.s[r * x.ld + j] * m.s[r * m.ld + j];
}

// dS = P * (dP * M - delta) on each row's causal keys, 0 after them (with dropout; without, the dP
// product's Grad epilogue computes dS); in dp.
template <class T>
void scores_grad(Block<T> p, Block<T> m, const T* delta, int64_t i0, int64_t rows, int64_t keys, Block<T> dp) {
  for (int64_t r = 0; r < rows; ++r) {
    T dl = delta[i0 + r];
    const T *prow = p.s + r * p.ld, *mrow = m.s + r * m.ld;
    T* dprow = dp.s + r * dp.ld;
    int64_t valid = i0 + r + 1;
    for (int64_t j = 0; j < valid; ++j) dprow[j] = prow[j] * (dprow[j] * mrow[j] - dl);
    attn::zero_row(dprow + valid, keys - valid);
  }
}

// One thread's scratch: score blocks s, dp, m [kBlock, ld] with ld = T rounded up to 16 plus 16
// (rows a power of two apart would share the L1's sets), delta [T].
template <class T>
struct Scratch {
  int64_t ld = 0;
  std::vector<T> s, dp, m, delta;
  // Sizes the buffers (they only grow: a thread keeps one instance).
  void reset(int64_t t_len, bool dropout, bool backward) {
    ld = (t_len + 15) / 16 * 16 + 16;
    size_t block = size_t(kBlock * ld);
    s.resize(block);
    if (backward) dp.resize(block), delta.resize(size_t(t_len));
    if (dropout) m.resize(block);
  }
  Block<T> block(std::vector<T>& v) { return {v.data(), ld}; }
};

// The rows' shifts of the forward's exps: each row's own (diagonal) score scale * q[t] . k[t], t =
// i0 + r (scale: the scores', base 2). Any value a little below a row's largest score serves
// (2^(S2 - shift) then neither overflows nor loses the row's largest terms), so it need not round
// as the product's S2[t, t] does; it is one of the row's scores, so the row's largest exp is >= ~1.
template <class E, class T>
void diagonal_scores(const attn::HeadView<E>& h, int64_t i0, int64_t rows, int64_t d, T scale, T* shift) {
  if constexpr (std::is_same_v<E, T>) {
    attn::block_row_dots(h.q + i0 * h.ld_qkv, h.k + i0 * h.ld_qkv, h.ld_qkv, rows, d, shift);
  } else {
    for (int64_t r = 0; r < rows; ++r) {
      const E *q = h.q + (i0 + r) * h.ld_qkv, *k = h.k + (i0 + r) * h.ld_qkv;
      shift[r] = T(lane_sum<T>(d, [&](int64_t c) { return attn::widen<T>(q[c]) * attn::widen<T>(k[c]); }));
    }
  }
  for (int64_t r = 0; r < rows; ++r) shift[r] *= scale;
}

// Whether every row's sum of exps, shifted by its diagonal score, stays below 2^100 (a row's
// largest score at most ~69 above its diagonal one, 100 in base 2): then no exp overflowed (f32's
// range ends at 2^128) and E V's sums stay far from f32's overflow for any |v| below ~1e5; >= 1
// the sum is (the diagonal's own exp). An infinity or a NaN fails.
inline bool shifted_sums_fit(const double* sum, int64_t rows) {
  constexpr double kLimit = 0x1p100;
  for (int64_t r = 0; r < rows; ++r)
    if (!(sum[r] < kLimit)) return false;
  return true;
}

// One head's forward (header comment); h: the head's q, k, v; out: its columns of [B,T,C] (row
// stride ld_out); scale: the scores' (base 2). The exps ride on the scores' epilogue, shifted by
// each row's diagonal score (not its maximum, unknown until the row's last tile), with the rows'
// sums; a block where a row's scores lie far above its diagonal one (shifted_sums_fit) is redone
// shifted by the maxima, the scores' RowMax epilogue and a pass of exps (exp_rows_with_lse).
template <class T, class E, class Ops>
void attention_forward_head(Ops& ops, const attn::HeadView<E>& h, int64_t t_len, int64_t d, T scale,
                            const HeadDropout& dr, T* out, int64_t ld_out, T* lse, Scratch<T>& w) {
  using Epi = attn::Epilogue<T>;
  T inv_sum[kBlock], shift[kBlock], lanes[kBlock * 16];
  double sum[kBlock];
  Block<T> s = w.block(w.s), m = w.block(w.m);
  for (int64_t i0 = 0; i0 < t_len; i0 += kBlock) {
    int64_t rows = std::min(kBlock, t_len - i0), keys = i0 + rows;
    // E[rows, keys] = 2^(scale * Q[i0:i0+rows] K[0:keys]^T - shift) and its rows' sums
    diagonal_scores(h, i0, rows, d, scale, shift);
    std::fill(lanes, lanes + rows * 16, T(0));
    ops.scores(i0, rows, keys, scale, s.s, s.ld, {Epi::Exp2Sum, shift, nullptr, 0, lanes});
    attn::block_lane_sums(lanes, rows, sum);
    if (shifted_sums_fit(sum, rows)) {
      zero_masked(s, i0, rows, keys);
      for (int64_t r = 0; r < rows; ++r) {
        lse[i0 + r] = natural_lse(shift[r], sum[r]);
        inv_sum[r] = T(1.0 / sum[r]);
      }
    } else {
      std::fill(lanes, lanes + rows * 16, T(-INFINITY));
      ops.scores(i0, rows, keys, scale, s.s, s.ld, {Epi::RowMax, nullptr, nullptr, 0, lanes});
      exp_rows_with_lse(s, i0, rows, keys, lanes, lse + i0, inv_sum);
    }
    if (dr.on()) {  // E -> E * mask / (1 - p)
      dropout_block(dr, t_len, i0, rows, keys, m);
      apply_mask(s, m, rows, keys, s);
    }
    ops.take_probs(s.s, rows, keys, s.ld);
    ops.pv(i0, rows, keys, out, ld_out, {Epi::RowScale, inv_sum});  // O[i0:i0+rows] = (E V[0:keys]) / sum = P V
  }
}

// One head's backward. With dropout (mask M scaled by 1/(1-p)): O = (P*M) V, so dV += (P*M)^T dO,
// dP = (dO V^T) * M, and dS = P * (dP - delta) with delta = rowsum(dO * O) as without dropout.
// dout, out: the head's columns of [B,T,C] (row stride ld_out); dq: the head's columns of dqkv
// (row stride 3C, dk and dv C and 2C further), accumulated into block by block, or (not
// `accumulate`) each row written where a block first reaches it and accumulated after.
template <class T, class Ops>
void attention_backward_head(Ops& ops, int64_t t_len, int64_t d, Scales<T> scale, const HeadDropout& dr, const T* dout,
                             const T* out, int64_t ld_out, const T* lse, bool accumulate, T* dq, Scratch<T>& w,
                             NextHeadPrefetch<T>& next) {
  // delta[t] = sum_j dO[t,j] O[t,j]
  attn::block_row_dots(dout, out, ld_out, t_len, d, w.delta.data());
  using Epi = attn::Epilogue<T>;
  // dQ, dK, dV accumulate straight into the head's columns of dqkv (rows 3C apart): the tiles
  // read and write C once each, after their sums, so the stride costs little there.
  int64_t c = ld_out, ldg = 3 * c;
  T *gq = dq, *gk = dq + c, *gv = dq + 2 * c;
  Block<T> s = w.block(w.s), dp = w.block(w.dp), m = w.block(w.m);
  for (int64_t i0 = 0; i0 < t_len; i0 += kBlock) {
    int64_t rows = std::min(kBlock, t_len - i0), keys = i0 + rows;
    T lse2[kBlock];
    for (int64_t r = 0; r < rows; ++r) lse2[r] = T(double(lse[i0 + r]) * kLog2e);
    ops.scores(i0, rows, keys, scale.base2, s.s, s.ld, {Epi::Exp2, lse2});  // P = 2^(S2 - lse2) = exp(S - lse)
    zero_masked(s, i0, rows, keys);
    if (dr.on()) {  // P*M, built in dp (free until dP)
      dropout_block(dr, t_len, i0, rows, keys, m);
      apply_mask(s, m, rows, keys, dp);
      ops.take_probs(dp.s, rows, keys, dp.ld);
    } else {
      ops.take_probs(s.s, rows, keys, s.ld);
    }
    next.step();
    ops.dv(i0, rows, keys, gv, ldg, accumulate);  // dV[0:keys] += (P*M)^T dO_blk
    next.step();
    if (dr.on()) {
      ops.dout_v(i0, rows, keys, dp.s, dp.ld);  // dP = dO_blk V[0:keys]^T
      scores_grad(s, m, w.delta.data(), i0, rows, keys, dp);
    } else {  // dS = P * (dO_blk V[0:keys]^T - delta)
      ops.dout_v(i0, rows, keys, dp.s, dp.ld, {Epi::Grad, w.delta.data() + i0, s.s, s.ld});
      zero_masked(dp, i0, rows, keys);
    }
    ops.take_probs(dp.s, rows, keys, dp.ld);
    next.step();
    ops.dq(i0, rows, keys, scale.natural, gq, ldg, accumulate);  // dQ_blk += scale * dS K[0:keys]
    next.step();
    ops.dk(i0, rows, keys, scale.natural, gk, ldg, accumulate);  // dK[0:keys] += scale * dS^T Q_blk
    next.step();
  }
}

// Sizes of one call: qkv [B,T,3C], H heads of D = C/H.
struct Dims {
  int64_t bsz, t_len, c, n_head, d;
  Dims(const Tensor& qkv, int64_t heads)
      : bsz(qkv.size(0)), t_len(qkv.size(1)), c(qkv.size(2) / 3), n_head(heads), d(c / heads) {}
  int64_t qkv_offset(int64_t p) const { return (p / n_head) * t_len * 3 * c + (p % n_head) * d; }
  int64_t out_offset(int64_t p) const { return (p / n_head) * t_len * c + (p % n_head) * d; }
  template <class E>
  attn::HeadView<E> head(const E* qkv, int64_t p) const {
    const E* base = qkv + qkv_offset(p);
    return {base, base + c, base + 2 * c, 3 * c};
  }
};

// A thread's operands and scratch, kept from call to call: a fresh few hundred KiB a call would
// cost page faults comparable to the arithmetic of a small batch. Ops: attention_operands.h.
template <class Ops, class T>
struct Workspace {
  Ops ops;
  Scratch<T> w;
};

template <class Ops, class T>
Workspace<Ops, T>& thread_workspace(const Dims& dm, bool dropout, bool backward) {
  thread_local Workspace<Ops, T> ws;
  ws.ops.reset(dm.t_len, dm.d, kBlock);
  ws.w.reset(dm.t_len, dropout, backward);
  return ws;
}

// Work is split over (b, h) pairs: each head runs on one thread, in a fixed order.
template <class Ops, class E, class T>
void forward_all(const Dims& dm, const E* qkv, const AttentionDropout& dropout, T* out, T* lse) {
  T scale = Scales<T>(dm.d).base2;
  parallel_for(dm.bsz * dm.n_head, dm.t_len * dm.t_len * dm.d, [&](int64_t p0, int64_t p1) {
    auto& [ops, w] = thread_workspace<Ops, T>(dm, dropout.p > 0, false);
    for (int64_t p = p0; p < p1; ++p) {
      ops.load_head(dm.head(qkv, p), nullptr, 0);
      attention_forward_head(ops, dm.head(qkv, p), dm.t_len, dm.d, scale,
                             head_dropout(dropout, dm.n_head, p / dm.n_head, p % dm.n_head, dm.t_len),
                             out + dm.out_offset(p), dm.c, lse + p * dm.t_len, w);
    }
  });
}

template <class Ops, class E, class T>
void backward_all(const Dims& dm, const E* qkv, const T* dout, const T* out, const T* lse,
                  const AttentionDropout& dropout, bool accumulate, T* dqkv) {
  Scales<T> scale(dm.d);
  parallel_for(dm.bsz * dm.n_head, 3 * dm.t_len * dm.t_len * dm.d, [&](int64_t p0, int64_t p1) {
    auto& [ops, w] = thread_workspace<Ops, T>(dm, dropout.p > 0, true);
    NextHeadPrefetch<T> next;
    int64_t shares = 5 * ((dm.t_len + kBlock - 1) / kBlock);  // step() after each product
    for (int64_t p = p0; p < p1; ++p) {
      int64_t o = dm.out_offset(p);
      ops.load_head(dm.head(qkv, p), dout + o, dm.c);
      if (p + 1 < p1)
        next.start(dqkv + dm.qkv_offset(p + 1), 3 * dm.c, dm.c, dm.d, dm.t_len, shares);
      else
        next.stop();
      attention_backward_head(ops, dm.t_len, dm.d, scale,
                              head_dropout(dropout, dm.n_head, p / dm.n_head, p % dm.n_head, dm.t_len), dout + o,
                              out + o, dm.c, lse + p * dm.t_len, accumulate, dqkv + dm.qkv_offset(p), w, next);
    }
  });
}

const uint16_t* bf16_bits(const Tensor& t) {
  return reinterpret_cast<const uint16_t*>(t.data<bf16>());
}

// Calls f(std::type_identity<Ops>, qkv's data, T{}) with the operands of qkv's dtype: f32 and f64 on
// FloatOperands<T>; bf16 (T = float) on Bf16Operands or widened on FloatOperands<float, bf16 bits>.
template <class F>
void dispatch_ops(const Tensor& qkv, const char* op, F&& f) {
  if (qkv.dtype() == DType::BF16) {
    if (attn::bf16_path() != attn::Bf16Path::Widened)
      f(std::type_identity<attn::Bf16Operands>{}, bf16_bits(qkv), float{});
    else
      f(std::type_identity<attn::FloatOperands<float, uint16_t>>{}, bf16_bits(qkv), float{});
    return;
  }
  dispatch_float(qkv.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    f(std::type_identity<attn::FloatOperands<T>>{}, qkv.data<T>(), zero);
  });
}

}  // namespace

// qkv f32/f64 (out, lse alike), or bf16 with f32 out and lse (runtime/ops.h).
void CpuBackend::attention_forward(const Tensor& qkv, int64_t n_head, const AttentionDropout& dropout, Tensor& out,
                                   Tensor& lse) {
  Dims dm(qkv, n_head);
  dispatch_ops(qkv, "attention", [&](auto ops, const auto* q, auto zero) {
    using T = decltype(zero);
    forward_all<typename decltype(ops)::type>(dm, q, dropout, out.data<T>(), lse.data<T>());
  });
}

void CpuBackend::attention_backward(const Tensor& dout, const Tensor& qkv, const Tensor& out, const Tensor& lse,
                                    int64_t n_head, const AttentionDropout& dropout, bool accumulate, Tensor& dqkv) {
  Dims dm(qkv, n_head);
  dispatch_ops(qkv, "attention_backward", [&](auto ops, const auto* q, auto zero) {
    using T = decltype(zero);
    backward_all<typename decltype(ops)::type>(dm, q, dout.data<T>(), out.data<T>(), lse.data<T>(), dropout, accumulate,
                                               dqkv.data<T>());
  });
}

}  // namespace mt::cpu
