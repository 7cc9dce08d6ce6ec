// bf16 operands of one attention head (runtime/cpu/attention_operands.h).
#include "runtime/cpu/attention_operands.h"

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
}

void Bf16Operands::load_head(const HeadView<Bits>& h, const float* dout, int64_t ld_out) {
  pack_rows_bf16(t_, d_, q_rows_.data(), Bf16At{h.q, h.ld_qkv});
  pack_pairs_bf16(d_, t_, kt_pairs_.data(), Bf16AtTransposed{h.k, h.ld_qkv});
  if (!dout) {
    pack_pairs_bf16(t_, d_, v_pairs_.data(), Bf16At{h.v, h.ld_qkv});
    return;
  }
  pack_pairs_bf16(d_, t_, vt_pairs_.data(), Bf16AtTransposed{h.v, h.ld_qkv});
  pack_pairs_bf16(t_, d_, k_pairs_.data(), Bf16At{h.k, h.ld_qkv});
  pack_pairs_bf16(t_, d_, q_pairs_.data(), Bf16At{h.q, h.ld_qkv});
  pack_rows_bf16(t_, d_, do_rows_.data(), F32At{dout, ld_out});
  pack_pairs_bf16(t_, d_, do_pairs_.data(), F32At{dout, ld_out});
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
  ldp_pairs_ = 2 * keys;
  pack_rows_bf16(rows, keys, p_rows_.data(), F32At{p, ld});
  pack_pairs_bf16(rows, keys, p_pairs_.data(), F32At{p, ld});
}

void Bf16Operands::pv(int64_t i0, int64_t rows, int64_t keys, float* out, int64_t ld_out,
                      const Epilogue<float>& epi) const {
  tile_gemm_bf16(rows, d_, keys, 1.0f, {p_rows_.data(), ldp_rows_, 2}, v_pairs_.data(), 2 * d_, false,
                 out + i0 * ld_out, ld_out, {Causal::KToRow, i0}, epi);
}

void Bf16Operands::dv(int64_t i0, int64_t rows, int64_t keys, float* dv, int64_t ld) const {
  tile_gemm_bf16(keys, d_, rows, 1.0f, {p_pairs_.data(), 2, ldp_pairs_}, do_pairs_.data() + i0 * d_, 2 * d_, true, dv,
                 ld, {Causal::KFromRow, i0});
}

void Bf16Operands::dq(int64_t i0, int64_t rows, int64_t keys, float scale, float* dq, int64_t ld) const {
  tile_gemm_bf16(rows, d_, keys, scale, {p_rows_.data(), ldp_rows_, 2}, k_pairs_.data(), 2 * d_, true, dq + i0 * ld, ld,
                 {Causal::KToRow, i0});
}

void Bf16Operands::dk(int64_t i0, int64_t rows, int64_t keys, float scale, float* dk, int64_t ld) const {
  tile_gemm_bf16(keys, d_, rows, scale, {p_pairs_.data(), 2, ldp_pairs_}, q_pairs_.data() + i0 * d_, 2 * d_, true, dk,
                 ld, {Causal::KFromRow, i0});
}

}  // namespace mt::cpu::attn
