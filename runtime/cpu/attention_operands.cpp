// bf16 operands of one attention head (runtime/cpu/attention_operands.h).
#include "runtime/cpu/attention_operands.h"

#include <cstring>

namespace mt::cpu::attn {
namespace {

int64_t even(int64_t n) {
  return (n + 1) & ~int64_t(1);
}

// Element (r, c) of a row-major matrix with row stride ld, as float.
struct Bf16At {
  const uint16_t* p;
  int64_t ld;
  float operator()(int64_t r, int64_t c) const { return bf16_bits_to_float(p[r * ld + c]); }
};
struct Bf16AtTransposed {  // element (r, c) of the transpose
  const uint16_t* p;
  int64_t ld;
  float operator()(int64_t r, int64_t c) const { return bf16_bits_to_float(p[c * ld + r]); }
};
struct F32At {
  const float* p;
  int64_t ld;
  float operator()(int64_t r, int64_t c) const { return p[r * ld + c]; }
};
struct F32AtTransposed {  // element (r, c) of the transpose
  const float* p;
  int64_t ld;
  float operator()(int64_t r, int64_t c) const { return p[c * ld + r]; }
};

// x (r, c) = p[r * ld + c], r < rows, c < cols, as bf16 in the layouts of attention_operands.h:
// by rows (out[r * even(cols) + c]), in pairs along r (out[(r/2) * 2 cols + 2c + r%2]), and the
// transpose by rows (out[c * even(rows) + r]); zero padding. AVX-512 where the CPU has it (the same
// bits as float_to_bf16_bits), the generic packers elsewhere.
void pack_f32_rows(const float* p, int64_t ld, int64_t rows, int64_t cols, uint16_t* out) {
  if (!avx512_units()) return pack_rows_bf16(rows, cols, out, F32At{p, ld});
  int64_t ldo = even(cols);
  for (int64_t r = 0; r < rows; ++r) {
    round_row_bf16_avx512(p + r * ld, cols, out + r * ldo);
    if (ldo > cols) out[r * ldo + cols] = 0;
  }
}

// The pairs (r, r + 1) of every column c of x as 32-bit words: into out[(r/2) * pair_step +
// c * col_stride] (AVX-512; an odd last row pairs with 0).
void pack_f32_row_pairs(const float* p, int64_t ld, int64_t rows, int64_t cols, uint32_t* out, int64_t pair_step,
                        int64_t col_stride) {
  for (int64_t r = 0; r < rows; r += 2)
    round_pairs_bf16_avx512(p + r * ld, r + 1 < rows ? p + (r + 1) * ld : nullptr, cols, out + (r / 2) * pair_step,
                            col_stride);
}

void pack_f32_pairs(const float* p, int64_t ld, int64_t rows, int64_t cols, uint16_t* out) {
  if (!avx512_units()) return pack_pairs_bf16(rows, cols, out, F32At{p, ld});
  pack_f32_row_pairs(p, ld, rows, cols, reinterpret_cast<uint32_t*>(out), cols, 1);
}

void pack_f32_transposed_rows(const float* p, int64_t ld, int64_t rows, int64_t cols, uint16_t* out) {
  if (!avx512_units()) return pack_rows_bf16(cols, rows, out, F32AtTransposed{p, ld});
  // out row c (even(rows) bf16) holds the pairs (r, r + 1) of column c at 32-bit index r / 2
  pack_f32_row_pairs(p, ld, rows, cols, reinterpret_cast<uint32_t*>(out), 1, even(rows) / 2);
}

// The head's bf16 slices x [T, D] (row stride ld) into the layouts of attention_operands.h, by
// moving bits: by rows (out[t * even(D) + d]), in pairs along T (out[(t/2) * 2D + 2d + t%2]), and
// the transpose in pairs along D (out[(d/2) * 2T + 2t + d%2]: pairs of x's rows are 32-bit
// words, so it is a 32-bit transpose). The generic packers where AVX-512 (BW) is absent or D odd.
bool vector_moves(int64_t d, int64_t ld) {
  static const bool bw = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return avx512_units() && bw && d % 2 == 0 && ld % 2 == 0;
}

void pack_bf16_rows(const uint16_t* x, int64_t ld, int64_t t, int64_t d, uint16_t* out) {
  if (!vector_moves(d, ld)) return pack_rows_bf16(t, d, out, Bf16At{x, ld});
  for (int64_t r = 0; r < t; ++r) std::memcpy(out + r * d, x + r * ld, size_t(d) * sizeof(uint16_t));
}

void pack_bf16_pairs(const uint16_t* x, int64_t ld, int64_t t, int64_t d, uint16_t* out) {
  if (!vector_moves(d, ld)) return pack_pairs_bf16(t, d, out, Bf16At{x, ld});
  for (int64_t r = 0; r < t; r += 2)
    interleave_bf16_avx512(x + r * ld, r + 1 < t ? x + (r + 1) * ld : nullptr, d,
                           reinterpret_cast<uint32_t*>(out + r * d));
}

void pack_bf16_transposed_pairs(const uint16_t* x, int64_t ld, int64_t t, int64_t d, uint16_t* out) {
  if (!vector_moves(d, ld)) return pack_pairs_bf16(d, t, out, Bf16AtTransposed{x, ld});
  // x as [T, D/2] 32-bit words (row stride ld/2) -> [D/2, T]: float bits moved, never computed on
  transpose(reinterpret_cast<const float*>(x), t, d / 2, ld / 2, reinterpret_cast<float*>(out), t);
}

}  // namespace

void Bf16Operands::reset(int64_t t_len, int64_t d, int64_t block) {
  t_ = t_len;
  d_ = d;
  dp_ = even(d);
  tp_ = even(t_len);
  for (auto* rows : {&q_rows_, &do_rows_}) rows->resize(size_t(t_ * dp_));
  for (auto* pairs : {&kt_pairs_, &vt_pairs_}) pairs->resize(size_t(dp_ * t_));
  for (auto* pairs : {&v_pairs_, &k_pairs_, &q_pairs_, &do_pairs_}) pairs->resize(size_t(tp_ * d_));
  p_rows_.resize(size_t(block * even(t_len)));
  p_pairs_.resize(size_t(even(block) * t_len));
  transposed_rows_ = bf16_path() == Bf16Path::Amx;
}

void Bf16Operands::load_head(const HeadView<Bits>& h, const float* dout, int64_t ld_out) {
  pack_bf16_rows(h.q, h.ld_qkv, t_, d_, q_rows_.data());
  pack_bf16_transposed_pairs(h.k, h.ld_qkv, t_, d_, kt_pairs_.data());
  if (!dout) {
    pack_bf16_pairs(h.v, h.ld_qkv, t_, d_, v_pairs_.data());
    return;
  }
  pack_bf16_transposed_pairs(h.v, h.ld_qkv, t_, d_, vt_pairs_.data());
  pack_bf16_pairs(h.k, h.ld_qkv, t_, d_, k_pairs_.data());
  pack_bf16_pairs(h.q, h.ld_qkv, t_, d_, q_pairs_.data());
  pack_f32_rows(dout, ld_out, t_, d_, do_rows_.data());
  pack_f32_pairs(dout, ld_out, t_, d_, do_pairs_.data());
}

void Bf16Operands::scores(int64_t i0, int64_t rows, int64_t keys, float scale, float* s, int64_t lds,
                          const Epilogue<float>& epi) const {
  tile_gemm_bf16(rows, keys, d_, scale, {q_rows_.data() + i0 * dp_, dp_, 2}, kt_pairs_.data(), 2 * t_, false, s, lds,
                 {Causal::ColsToRow, i0}, epi);
}

void Bf16Operands::dout_v(int64_t i0, int64_t rows, int64_t keys, float* dp, int64_t ldp,
                          const Epilogue<float>& epi) const {
  tile_gemm_bf16(rows, keys, d_, 1.0f, {do_rows_.data() + i0 * dp_, dp_, 2}, vt_pairs_.data(), 2 * t_, false, dp, ldp,
                 {Causal::ColsToRow, i0}, epi);
}

void Bf16Operands::take_probs(const float* p, int64_t rows, int64_t keys, int64_t ld) {
  ldp_rows_ = even(keys);
  pack_f32_rows(p, ld, rows, keys, p_rows_.data());
  if (transposed_rows_) {  // P^T [keys, rows] by rows: A(i, pair q) at i * even(rows) + 2q
    ldp_pairs_ = even(rows);
    pack_f32_transposed_rows(p, ld, rows, keys, p_pairs_.data());
    return;
  }
  ldp_pairs_ = 2 * keys;
  pack_f32_pairs(p, ld, rows, keys, p_pairs_.data());
}

// A = P^T of dV and dK from its row r0 (a key) on: its pairs along the block's rows, in the layout
// take_probs packed.
StridedA<uint16_t> Bf16Operands::p_transposed(int64_t r0) const {
  if (transposed_rows_) return {p_pairs_.data() + r0 * ldp_pairs_, ldp_pairs_, 2};
  return {p_pairs_.data() + r0 * 2, 2, ldp_pairs_};
}

void Bf16Operands::pv(int64_t i0, int64_t rows, int64_t keys, float* out, int64_t ld_out,
                      const Epilogue<float>& epi) const {
  tile_gemm_bf16(rows, d_, keys, 1.0f, {p_rows_.data(), ldp_rows_, 2}, v_pairs_.data(), 2 * d_, false,
                 out + i0 * ld_out, ld_out, {Causal::KToRow, i0}, epi);
}

void Bf16Operands::keys_by_block(int64_t i0, int64_t rows, int64_t keys, float alpha, const Bits* x_blk, float* c,
                                 int64_t ld, bool accumulate) const {
  key_rows(i0, keys, accumulate, [&](int64_t r0, int64_t r1, bool add) {
    tile_gemm_bf16(r1 - r0, d_, rows, alpha, p_transposed(r0), x_blk, 2 * d_, add, c + r0 * ld, ld,
                   {Causal::KFromRow, i0 - r0});
  });
}

void Bf16Operands::dv(int64_t i0, int64_t rows, int64_t keys, float* dv, int64_t ld, bool accumulate) const {
  keys_by_block(i0, rows, keys, 1.0f, do_pairs_.data() + i0 * d_, dv, ld, accumulate);
}

void Bf16Operands::dq(int64_t i0, int64_t rows, int64_t keys, float scale, float* dq, int64_t ld,
                      bool accumulate) const {
  tile_gemm_bf16(rows, d_, keys, scale, {p_rows_.data(), ldp_rows_, 2}, k_pairs_.data(), 2 * d_, accumulate,
                 dq + i0 * ld, ld, {Causal::KToRow, i0});
}

void Bf16Operands::dk(int64_t i0, int64_t rows, int64_t keys, float scale, float* dk, int64_t ld,
                      bool accumulate) const {
  keys_by_block(i0, rows, keys, scale, q_pairs_.data() + i0 * d_, dk, ld, accumulate);
}

}  // namespace mt::cpu::attn
