// AVX-512 row operations of the attention kernel (runtime/cpu/attention_rows.h).
#include "runtime/cpu/attention_rows.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "runtime/cpu/attention_simd.h"

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() through, which -Wuninitialized flags once
// they are inlined into a target("avx512f") function.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace mt::cpu::attn {
namespace {

#define MT_AVX512 __attribute__((target("avx512f")))

// Lanes [0, n) of a 16-lane vector, n <= 16.
MT_AVX512 inline __mmask16 head_mask(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
}

// The 16 lanes' sum in f64, as a tree (a short dependency chain).
MT_AVX512 inline double sum_lanes_f64(__m512 v) {
  __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
  __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}

// float_to_bf16_bits (runtime/float16.h) on 16 lanes, in the low 16 bits of each 32-bit lane:
// round to nearest even, a NaN quieted.
MT_AVX512 inline __m512i bf16_lanes(__m512i u) {
  __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), odd), 16);
  __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_mask_blend_epi32(nan, rounded, quiet);
}

}  // namespace

MT_AVX512 void round_row_bf16_avx512(const float* x, int64_t n, uint16_t* out) {
  for (int64_t j = 0; j < n; j += 16) {
    __mmask16 k = head_mask(n - j);
    __m512i b = bf16_lanes(_mm512_castps_si512(_mm512_maskz_loadu_ps(k, x + j)));
    _mm512_mask_cvtepi32_storeu_epi16(out + j, k, b);
  }
}

MT_AVX512 void round_pairs_bf16_avx512(const float* x0, const float* x1, int64_t n, uint32_t* out, int64_t stride) {
  __m512i lane = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                    _mm512_set1_epi32(int32_t(stride)));
  for (int64_t j = 0; j < n; j += 16) {
    __mmask16 k = head_mask(n - j);
    __m512i lo = bf16_lanes(_mm512_castps_si512(_mm512_maskz_loadu_ps(k, x0 + j)));
    __m512i hi = x1 ? bf16_lanes(_mm512_castps_si512(_mm512_maskz_loadu_ps(k, x1 + j))) : _mm512_setzero_si512();
    __m512i pair = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
    if (stride == 1)
      _mm512_mask_storeu_epi32(out + j, k, pair);
    else
      _mm512_mask_i32scatter_epi32(out + j * stride, k, lane, pair, 4);
  }
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) void interleave_bf16_avx512(const uint16_t* x0, const uint16_t* x1,
                                                                                 int64_t n, uint32_t* out) {
  for (int64_t j = 0; j < n; j += 16) {
    __mmask16 k = head_mask(n - j);
    __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, x0 + j));
    __m512i hi = x1 ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, x1 + j)) : _mm512_setzero_si512();
    _mm512_mask_storeu_epi32(out + j, k, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
  }
}

MT_AVX512 float row_max_avx512(const float* x, int64_t n) {
  __m512 m = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < n; j += 16) {
    __mmask16 k = head_mask(n - j);
    m = _mm512_max_ps(m, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, x + j));
  }
  return _mm512_reduce_max_ps(m);
}

MT_AVX512 double exp2_shifted_sum_avx512(float* x, int64_t n, float shift) {
  __m512 s = _mm512_set1_ps(shift), sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    __mmask16 k = head_mask(n - j);
    __m512 e = exp2_16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), s));
    _mm512_mask_storeu_ps(x + j, k, e);
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(k, e));
  }
  return sum_lanes_f64(sum);
}

MT_AVX512 void exp2_shifted_avx512(float* x, int64_t n, float shift) {
  __m512 s = _mm512_set1_ps(shift);
  for (int64_t j = 0; j < n; j += 16) {
    __mmask16 k = head_mask(n - j);
    _mm512_mask_storeu_ps(x + j, k, exp2_16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), s)));
  }
}

MT_AVX512 double dot_avx512(const float* x, const float* y, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    __mmask16 k = head_mask(n - j);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, x + j), _mm512_maskz_loadu_ps(k, y + j), acc);
  }
  return sum_lanes_f64(acc);
}

MT_AVX512 void zero_avx512(float* x, int64_t n) {
  for (int64_t j = 0; j < n; j += 16) _mm512_mask_storeu_ps(x + j, head_mask(n - j), _mm512_setzero_ps());
}

MT_AVX512 float max_lanes(const float* x) {
  return _mm512_reduce_max_ps(_mm512_loadu_ps(x));
}

// r[i] <- column i of the 16 x 16 block whose rows are r[0..16) (four rounds of pairwise shuffles).
MT_AVX512 inline void transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {  // 2 x 2 blocks of single values
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4)  // of pairs
    for (int j = 0; j < 2; ++j) {
      __m512d a = _mm512_castps_pd(t[i + j]), b = _mm512_castps_pd(t[i + j + 2]);
      r[i + j] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
      r[i + j + 2] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    }
  for (int i = 0; i < 16; i += 8)  // of 128-bit quarters
    for (int j = 0; j < 4; ++j) {
      t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
      t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xdd);
    }
  for (int j = 0; j < 8; ++j) {  // of 256-bit halves
    r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
  }
  // The rounds leave columns 1 and 2 of each four swapped (c in r[c with its bits 0 and 1 swapped]).
  for (int i = 0; i < 16; i += 4) std::swap(r[i + 1], r[i + 2]);
}

// Blocks of 16 x 16: 16 rows read (masked at the edges), transposed in registers, 16 rows written.
MT_AVX512 void transpose_avx512(const float* x, int64_t rows, int64_t cols, int64_t ld, float* xt, int64_t ldt) {
  for (int64_t r0 = 0; r0 < rows; r0 += 16)
    for (int64_t c0 = 0; c0 < cols; c0 += 16) {
      int64_t nr = std::min<int64_t>(16, rows - r0), nc = std::min<int64_t>(16, cols - c0);
      __m512 v[16];
      for (int i = 0; i < 16; ++i)
        v[i] = i < nr ? _mm512_maskz_loadu_ps(head_mask(nc), x + (r0 + i) * ld + c0) : _mm512_setzero_ps();
      transpose16(v);
      for (int j = 0; j < nc; ++j) _mm512_mask_storeu_ps(xt + (c0 + j) * ldt + r0, head_mask(nr), v[j]);
    }
}

MT_AVX512 void block_zero_tails_avx512(float* s, int64_t ld, int64_t valid0, int64_t rows, int64_t keys) {
  for (int64_t r = 0; r < rows; ++r) zero_avx512(s + r * ld + valid0 + r, keys - valid0 - r);
}

MT_AVX512 void block_row_dots_avx512(const float* x, const float* y, int64_t ld, int64_t rows, int64_t n, float* out) {
  for (int64_t r = 0; r < rows; ++r) out[r] = float(dot_avx512(x + r * ld, y + r * ld, n));
}

MT_AVX512 void block_lane_sums_avx512(const float* lanes, int64_t rows, double* sum) {
  for (int64_t r = 0; r < rows; ++r) sum[r] = sum_lanes_f64(_mm512_loadu_ps(lanes + 16 * r));
}

}  // namespace mt::cpu::attn
