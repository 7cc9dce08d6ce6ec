// The GEMM operands of one attention head, in the layouts the tile GEMMs read
// (runtime/cpu/attention_tile_gemm.h), and the six products of the fused kernel on them:
//
//   scores   S[rows, keys]  = scale * Q_blk K^T        (forward and backward's recompute)
//   pv       O_blk[rows, D] = P V
//   dout_v   dP[rows, keys] = dO_blk V^T
// (these three may take an Epilogue, attention_tile_gemm.h: C's rows are the block's rows)
//   dv       dV[keys, D]   += P^T dO_blk
//   dq       dQ_blk        += scale * dS K
//   dk       dK[keys, D]   += scale * dS^T Q_blk
// (these three write instead of adding where `accumulate` is false and the rows are new: dQ_blk,
// and dV, dK's rows [i0, keys), which earlier blocks did not reach; key_rows below)
//
// Q_blk = rows [i0, i0 + rows) of the head's queries, keys = i0 + rows (the causal block); P (or dS)
// is the f32/f64 block [rows, keys] given to take_probs, zero where the causal mask is.
//
// FloatOperands<T> (f32, f64): the slices a product streams along a long k loop copied per head
// to contiguous [T, D] (v forward, k backward), K^T and V^T packed: the tiles then read rows D
// apart, not 3C (fewer TLB entries, no cache-set conflicts); q and dO are read in place.
// FloatOperands<float, uint16_t> (bf16 qkv, widened): the same f32 micro-kernels on the bf16
// operands widened exactly to f32 (dO, P and dS rounded to bf16 first).
// The products read the block [rows, keys] at row stride ld (s, dp, p) and write dQ, dK, dV [T, D]
// at row stride ld (accumulating) and O into the output's rows.
//
// Bf16Operands (bf16 qkv): q, k, v, dO, P and dS rounded to bf16, packed in pairs along each
// product's k (AVX512-BF16's layout), f32 accumulation and results.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include <vector>

#include "runtime/cpu/attention_rows.h"
#include "runtime/cpu/attention_tile_gemm.h"
#include "runtime/float16.h"

namespace mt::cpu::attn {

// One head's slices of the packed projections: q, k, v [T, D] with row stride ld_qkv = 3C.
template <class E>
struct HeadView {
  const E *q, *k, *v;
  int64_t ld_qkv;
};

// x as T: bf16 bits widened (exactly), other types converted.
template <class T, class E>
T widen(E x) {
  if constexpr (std::is_same_v<E, uint16_t>)
    return T(bf16_bits_to_float(x));
  else
    return T(x);
}

// x rounded to the nearest bf16, as float (NaN stays NaN).
inline float round_bf16(float x) {
  return bf16_bits_to_float(float_to_bf16_bits(x));
}

// Row-major copies of one head's [T, D] slices: rows D apart instead of 3C, contiguous in memory;
// with `round`, each value rounded to bf16.
template <class T, class E>
void copy_rows(const E* x, int64_t rows, int64_t cols, int64_t ld, T* y, bool round = false) {
  for (int64_t r = 0; r < rows; ++r) {
    const E* xr = x + r * ld;
    T* yr = y + r * cols;
    if (round)
      for (int64_t c = 0; c < cols; ++c) yr[c] = T(round_bf16(float(xr[c])));
    else
      for (int64_t c = 0; c < cols; ++c) yr[c] = widen<T>(xr[c]);
  }
}

// The rows [0, keys) of dK or dV at block i0 in one or two products f(r0, r1, add): rows below i0
// hold the earlier blocks' sums (add), rows from i0 on are new, written unless `accumulate`.
template <class F>
void key_rows(int64_t i0, int64_t keys, bool accumulate, F&& f) {
  if (accumulate || i0 == 0) return f(0, keys, accumulate);
  f(0, i0, true);
  f(i0, keys, false);
}

// E: the element type of qkv: T itself, or bf16 bits (uint16_t) with T = float: the widened bf16
// path, whose products take q, k, v, dO, P and dS rounded to bf16 and held exactly in f32.
template <class T, class E = T>
class FloatOperands {
 public:
  static constexpr bool kRound = std::is_same_v<E, uint16_t>;

  // Sizes the buffers for heads of [T, D] (they only grow: a thread keeps one instance).
  void reset(int64_t t_len, int64_t d, int64_t block) {
    t_ = t_len;
    d_ = d;
    ldt_ = (t_len + 15) / 16 * 16 + 16;
    for (auto* x : {&q_, &k_, &v_, &do_}) x->resize(size_t(t_len * d));
    for (auto* xt : {&kt_, &vt_}) xt->resize(size_t(d * ldt_));
    if (kRound) p_round_.resize(size_t(block * t_len));
  }

  // dout: the head's dO (backward) or nullptr (forward). Copied, slice by slice, only what a
  // product streams along a long k loop: v (P V) and k (dQ); q and dO are read in place (the
  // scores' and dP's A, by broadcasts; dK's and dV's B, 64 rows a block), k and v transposed
  // straight from qkv (copying a head's slices took about as long as one of its products; q, k
  // and v rows together were slower than each slice alone). Where E is not T (bf16 bits) q and dO
  // are widened (dO rounded) into copies too.
  void load_head(const HeadView<E>& h, const T* dout, int64_t ld_out) {
    bool backward = dout != nullptr;
    q_at_ = q_.data(), ldq_ = d_;
    do_at_ = do_.data(), lddo_ = d_;
    if constexpr (std::is_same_v<E, T>) {
      q_at_ = h.q, ldq_ = h.ld_qkv;
      if (backward) do_at_ = dout, lddo_ = ld_out;
    } else {
      copy_rows(h.q, t_, d_, h.ld_qkv, q_.data());
    }
    transposed_slice(h.k, kt_.data(), backward ? k_.data() : nullptr, h.ld_qkv);  // K^T, and K for dQ
    if (!backward) return copy_rows(h.v, t_, d_, h.ld_qkv, v_.data());            // P V's B operand
    transposed_slice(h.v, vt_.data(), nullptr, h.ld_qkv);                         // V^T for dP
    if (do_at_ == do_.data()) copy_rows(dout, t_, d_, ld_out, do_.data(), kRound);
  }
  void scores(int64_t i0, int64_t rows, int64_t keys, T scale, T* s, int64_t lds, const Epilogue<T>& epi = {}) const {
    tile_gemm<T>(rows, keys, d_, scale, {q_at_ + i0 * ldq_, ldq_, 1}, kt_.data(), ldt_, false, s, lds,
                 {Causal::ColsToRow, i0}, epi);
  }
  void dout_v(int64_t i0, int64_t rows, int64_t keys, T* dp, int64_t ldp, const Epilogue<T>& epi = {}) const {
    tile_gemm<T>(rows, keys, d_, T(1), {do_at_ + i0 * lddo_, lddo_, 1}, vt_.data(), ldt_, false, dp, ldp,
                 {Causal::ColsToRow, i0}, epi);
  }
  void take_probs(const T* p, int64_t rows, int64_t keys, int64_t ld) {
    if constexpr (kRound) {  // rounded to bf16 in a copy: the caller's P stays f32 for dS
      copy_rows(p, rows, keys, ld, p_round_.data(), true);
      p_ = p_round_.data();
      ldp_ = keys;
    } else {
      p_ = p;
      ldp_ = ld;
    }
  }
  void pv(int64_t i0, int64_t rows, int64_t keys, T* out, int64_t ld_out, const Epilogue<T>& epi = {}) const {
    tile_gemm<T>(rows, d_, keys, T(1), {p_, ldp_, 1}, v_.data(), d_, false, out + i0 * ld_out, ld_out,
                 {Causal::KToRow, i0}, epi);
  }
  void dv(int64_t i0, int64_t rows, int64_t keys, T* dv, int64_t ld, bool accumulate) const {
    keys_by_block(i0, rows, keys, T(1), do_at_ + i0 * lddo_, lddo_, dv, ld, accumulate);
  }
  void dq(int64_t i0, int64_t rows, int64_t keys, T scale, T* dq, int64_t ld, bool accumulate) const {
    tile_gemm<T>(rows, d_, keys, scale, {p_, ldp_, 1}, k_.data(), d_, accumulate, dq + i0 * ld, ld,
                 {Causal::KToRow, i0});
  }
  void dk(int64_t i0, int64_t rows, int64_t keys, T scale, T* dk, int64_t ld, bool accumulate) const {
    keys_by_block(i0, rows, keys, scale, q_at_ + i0 * ldq_, ldq_, dk, ld, accumulate);
  }

 private:
  // C[0:keys, D] (+)= alpha P^T X_blk (dV: X = dO, dK: X = Q; x_blk [rows, D]), rows as key_rows says.
  void keys_by_block(int64_t i0, int64_t rows, int64_t keys, T alpha, const T* x_blk, int64_t ldx, T* c, int64_t ld,
                     bool accumulate) const {
    key_rows(i0, keys, accumulate, [&](int64_t r0, int64_t r1, bool add) {
      tile_gemm<T>(r1 - r0, d_, rows, alpha, {p_ + r0, 1, ldp_}, x_blk, ldx, add, c + r0 * ld, ld,
                   {Causal::KFromRow, i0 - r0});
    });
  }
  // x [T, D] (row stride ld) -> xt [D, ldt_]: straight from x where E is T and no copy is asked
  // for; else through `copy` (or v_'s buffer, free then) [T, D], which keeps it.
  void transposed_slice(const E* x, T* xt, T* copy, int64_t ld) {
    if constexpr (std::is_same_v<E, T>)
      if (!copy) return transpose(x, t_, d_, ld, xt, ldt_);
    if (!copy) copy = v_.data();
    copy_rows(x, t_, d_, ld, copy);
    transpose(copy, t_, d_, d_, xt, ldt_);
  }
  int64_t t_ = 0, d_ = 0, ldt_ = 0;  // ldt_: row stride of K^T and V^T, T rounded up to 16 plus 16
  const T* q_at_ = nullptr;          // q and dO as the products read them: the copies, or in place
  const T* do_at_ = nullptr;
  int64_t ldq_ = 0, lddo_ = 0;
  std::vector<T> q_, k_, v_, do_, kt_, vt_;  // [T, D] each; K^T, V^T [D, ldt_]
  std::vector<T> p_round_;                   // widened bf16 path: P or dS rounded, [rows, keys]
  const T* p_ = nullptr;
  int64_t ldp_ = 0;
};

// Packs x(r, c) (r < rows, c < cols) as bf16 into `out`, in one of the two layouts of the tile GEMM:
//   rows layout  out[r * ld + c], ld = cols rounded up to even (pairs along c: an A operand)
//   pairs layout out[(r/2) * 2*cols + 2*c + r%2] (pairs along r: B, or the transpose's A)
// with zeros in the padding (an odd cols or rows). get(r, c) returns float.
template <class Get>
void pack_rows_bf16(int64_t rows, int64_t cols, uint16_t* out, Get&& get) {
  int64_t ld = (cols + 1) & ~int64_t(1);
  for (int64_t r = 0; r < rows; ++r) {
    uint16_t* o = out + r * ld;
    for (int64_t c = 0; c < cols; ++c) o[c] = float_to_bf16_bits(get(r, c));
    if (ld > cols) o[cols] = 0;
  }
}
template <class Get>
void pack_pairs_bf16(int64_t rows, int64_t cols, uint16_t* out, Get&& get) {
  for (int64_t r = 0; r < rows; r += 2) {
    uint16_t* o = out + r * cols;
    bool second = r + 1 < rows;
    for (int64_t c = 0; c < cols; ++c) {
      o[2 * c] = float_to_bf16_bits(get(r, c));
      o[2 * c + 1] = second ? float_to_bf16_bits(get(r + 1, c)) : uint16_t(0);
    }
  }
}

class Bf16Operands {
 public:
  using Bits = uint16_t;
  void reset(int64_t t_len, int64_t d, int64_t block);  // as FloatOperands::reset

  // dout: the head's f32 dO (backward) or nullptr (forward).
  void load_head(const HeadView<Bits>& h, const float* dout, int64_t ld_out);
  void scores(int64_t i0, int64_t rows, int64_t keys, float scale, float* s, int64_t lds,
              const Epilogue<float>& epi = {}) const;
  void dout_v(int64_t i0, int64_t rows, int64_t keys, float* dp, int64_t ldp, const Epilogue<float>& epi = {}) const;
  void take_probs(const float* p, int64_t rows, int64_t keys, int64_t ld);
  void pv(int64_t i0, int64_t rows, int64_t keys, float* out, int64_t ld_out, const Epilogue<float>& epi = {}) const;
  void dv(int64_t i0, int64_t rows, int64_t keys, float* dv, int64_t ld, bool accumulate) const;
  void dq(int64_t i0, int64_t rows, int64_t keys, float scale, float* dq, int64_t ld, bool accumulate) const;
  void dk(int64_t i0, int64_t rows, int64_t keys, float scale, float* dk, int64_t ld, bool accumulate) const;

 private:
  StridedA<uint16_t> p_transposed(int64_t r0) const;  // from row r0 of P^T on
  // C[0:keys, D] (+)= alpha P^T X_blk (X_blk in pairs along its rows), rows as key_rows says.
  void keys_by_block(int64_t i0, int64_t rows, int64_t keys, float alpha, const Bits* x_blk, float* c, int64_t ld,
                     bool accumulate) const;
  int64_t t_ = 0, d_ = 0, dp_ = 0, tp_ = 0;  // dp_, tp_: D and T rounded up to even
  // Per head: q and dO by rows [T, Dp]; K^T, V^T as pairs along D [Dp/2, T, 2]; V, K, Q, dO as
  // pairs along T [Tp/2, D, 2]. Per block: P (or dS) by rows [rows, keys rounded up to even], and
  // for dV and dK (A = P^T) in pairs along rows [rows/2, keys, 2] or, on AMX, whose A tiles want
  // each row's pairs contiguous, P^T by rows [keys, rows rounded up to even].
  std::vector<Bits> q_rows_, do_rows_, kt_pairs_, vt_pairs_, v_pairs_, k_pairs_, q_pairs_, do_pairs_;
  std::vector<Bits> p_rows_, p_pairs_;
  int64_t ldp_rows_ = 0, ldp_pairs_ = 0;
  bool transposed_rows_ = false;  // p_pairs_ holds P^T by rows (the Amx path)
};

}  // namespace mt::cpu::attn
