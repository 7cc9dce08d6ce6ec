// Row operations of the attention's softmax and operand packing, on AVX-512 where the CPU has it
// (attn::avx512_units()) and on the portable helpers of runtime/cpu/vec_math.h elsewhere; f64
// always takes the portable ones. Both compute 2^x as vexp2 does (vec_math.h; the attention's scores
// are in base 2): the same formula, so the paths differ only in the polynomial's f32 rounding where
// the compiler does not fuse its multiply-adds as the AVX-512 code does, and in summation order.
#pragma once

#include <cstdint>

#include "runtime/cpu/attention_tile_gemm.h"
#include "runtime/cpu/vec_math.h"

namespace mt::cpu::attn {

float row_max_avx512(const float* x, int64_t n);
double exp2_shifted_sum_avx512(float* x, int64_t n, float shift);  // x = 2^(x - shift); returns the sum
void exp2_shifted_avx512(float* x, int64_t n, float shift);        // x = 2^(x - shift)
// Whole blocks of rows, one call each (block_* below): s [rows, keys] at row stride ld, row r's
// entries valid below valid0 + r.
void block_zero_tails_avx512(float* s, int64_t ld, int64_t valid0, int64_t rows, int64_t keys);
void block_row_dots_avx512(const float* x, const float* y, int64_t ld, int64_t rows, int64_t n, float* out);
void block_lane_sums_avx512(const float* lanes, int64_t rows, double* sum);
void transpose_avx512(const float* x, int64_t rows, int64_t cols, int64_t ld, float* xt, int64_t ldt);
double dot_avx512(const float* x, const float* y, int64_t n);
float max_lanes(const float* x);  // max of x[0..16)
void zero_avx512(float* x, int64_t n);
// out[j] = float_to_bf16_bits(x[j]), j < n
void round_row_bf16_avx512(const float* x, int64_t n, uint16_t* out);
// out[j * stride] = bf16(x0[j]) | bf16(x1[j]) << 16 (x1 nullptr: 0), j < n: a pair along k
void round_pairs_bf16_avx512(const float* x0, const float* x1, int64_t n, uint32_t* out, int64_t stride);
// out[j] = x0[j] | x1[j] << 16 (x1 nullptr: 0), j < n: bf16 bits paired along k (needs AVX512-BW)
void interleave_bf16_avx512(const uint16_t* x0, const uint16_t* x1, int64_t n, uint32_t* out);

// max_j x[j], j < n
template <class T>
T row_max(const T* x, int64_t n) {
  if constexpr (sizeof(T) == 4)
    if (avx512_units()) return row_max_avx512(x, n);
  return lane_max(x, n);
}

// x[j] = 2^(x[j] - shift) for j < n.
template <class T>
void exp2_shifted_row(T* x, int64_t n, T shift) {
  if constexpr (sizeof(T) == 4)
    if (avx512_units()) return exp2_shifted_avx512(x, n, shift);
  for (int64_t j = 0; j < n; ++j) x[j] = vexp2(x[j] - shift);
}

// x[j] = 2^(x[j] - shift) for j < n; returns sum_j x[j].
template <class T>
double exp2_shifted_sum_row(T* x, int64_t n, T shift) {
  if constexpr (sizeof(T) == 4)
    if (avx512_units()) return exp2_shifted_sum_avx512(x, n, shift);
  exp2_shifted_row(x, n, shift);
  return lane_sum<T>(n, [&](int64_t j) { return x[j]; });
}

// x[j] = 0 for j < n (n <= 0: nothing).
template <class T>
void zero_row(T* x, int64_t n) {
  if constexpr (sizeof(T) == 4)
    if (avx512_units()) return zero_avx512(x, n);
  for (int64_t j = 0; j < n; ++j) x[j] = T(0);
}

// max_j x[j], j < 16
template <class T>
T max16(const T* x) {
  if constexpr (sizeof(T) == 4)
    if (avx512_units()) return max_lanes(x);
  T m = x[0];
  for (int l = 1; l < 16; ++l) m = m > x[l] ? m : x[l];
  return m;
}

// sum_j x[j] y[j], j < n: f32 products summed in 16 f32 lanes, the lanes in f64.
template <class T>
double row_dot(const T* x, const T* y, int64_t n) {
  if constexpr (sizeof(T) == 4)
    if (avx512_units()) return dot_avx512(x, y, n);
  return lane_sum<T>(n, [&](int64_t j) { return x[j] * y[j]; });
}

// xt[c * ldt + r] = x[r * ld + c]: x [rows, cols] (row stride ld) -> xt [cols, rows] (row stride ldt).
template <class T>
void transpose(const T* x, int64_t rows, int64_t cols, int64_t ld, T* xt, int64_t ldt) {
  if constexpr (sizeof(T) == 4)
    if (avx512_units() && ld < (int64_t(1) << 26)) return transpose_avx512(x, rows, cols, ld, xt, ldt);
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r) xt[c * ldt + r] = x[r * ld + c];
}

// A block's rows, one call (the per-row helpers above cost a call and a dispatch per row; rows of a
// short valid range spent as long in those as in their arithmetic). Same values as the per-row
// helpers, row by row.
//
// The forward's softmax rows where a block is shifted by its rows' maxima (attention.cpp, a rare
// case since the exps ride on the scores' epilogue: the per-row helpers): shift[r] =
// max16(vmax + 16 r); s[r, j] = 2^(s[r, j] - shift[r]) for j < valid0 + r, 0 from there to keys;
// sum[r] = the row's exps summed as exp2_shifted_sum_row sums them.
template <class T>
void block_exp_rows(T* s, int64_t ld, int64_t valid0, int64_t rows, int64_t keys, const T* vmax, T* shift,
                    double* sum) {
  for (int64_t r = 0; r < rows; ++r) {
    T* row = s + r * ld;
    int64_t valid = valid0 + r;
    shift[r] = max16(vmax + 16 * r);
    sum[r] = exp2_shifted_sum_row(row, valid, shift[r]);
    zero_row(row + valid, keys - valid);
  }
}

// s[r, j] = 0 for valid0 + r <= j < keys (the causally masked entries of a score block).
template <class T>
void block_zero_tails(T* s, int64_t ld, int64_t valid0, int64_t rows, int64_t keys) {
  if constexpr (sizeof(T) == 4)
    if (avx512_units()) return block_zero_tails_avx512(s, ld, valid0, rows, keys);
  for (int64_t r = 0; r < rows; ++r) zero_row(s + r * ld + valid0 + r, keys - valid0 - r);
}

// out[r] = row_dot(x + r ld, y + r ld, n), r < rows.
template <class T>
void block_row_dots(const T* x, const T* y, int64_t ld, int64_t rows, int64_t n, T* out) {
  if constexpr (sizeof(T) == 4)
    if (avx512_units()) return block_row_dots_avx512(x, y, ld, rows, n, out);
  for (int64_t r = 0; r < rows; ++r) out[r] = T(row_dot(x + r * ld, y + r * ld, n));
}

// sum[r] = the 16 values lanes[16 r, 16 r + 16) summed in f64 (the Exp2Sum epilogue's row sums).
template <class T>
void block_lane_sums(const T* lanes, int64_t rows, double* sum) {
  if constexpr (sizeof(T) == 4)
    if (avx512_units()) return block_lane_sums_avx512(lanes, rows, sum);
  for (int64_t r = 0; r < rows; ++r) sum[r] = lane_sum<T>(16, [&](int64_t l) { return lanes[16 * r + l]; });
}

}  // namespace mt::cpu::attn
