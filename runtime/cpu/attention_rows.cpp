// AVX-512 row operations of the attention kernel (runtime/cpu/attention_rows.h).
#include "runtime/cpu/attention_rows.h"

#include <immintrin.h>

#include <cmath>
#include <initializer_list>

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

// vexp<float> (vec_math.h) on 16 lanes: exp(x) = 2^n * 2^f, n = round(x log2 e), the same
// degree-7 polynomial; below -87.3 exactly 0, above 88.3 saturated.
MT_AVX512 inline __m512 exp16(__m512 x) {
  __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 y = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), xc);
  y = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723e-06f), y);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  for (float c : {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f})
    p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(c));
  __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  __m512 r = _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
  __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_LT_OQ);
  return _mm512_mask_blend_ps(under, r, _mm512_setzero_ps());
}

}  // namespace

MT_AVX512 float row_max_avx512(const float* x, int64_t n) {
  __m512 m = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < n; j += 16) {
    __mmask16 k = head_mask(n - j);
    m = _mm512_max_ps(m, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, x + j));
  }
  return _mm512_reduce_max_ps(m);
}

MT_AVX512 double exp_shifted_sum_avx512(float* x, int64_t n, float shift) {
  __m512 s = _mm512_set1_ps(shift), sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    __mmask16 k = head_mask(n - j);
    __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), s));
    _mm512_mask_storeu_ps(x + j, k, e);
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(k, e));
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  double total = 0;
  for (float v : lanes) total += double(v);
  return total;
}

MT_AVX512 void exp_shifted_avx512(float* x, int64_t n, float shift) {
  __m512 s = _mm512_set1_ps(shift);
  for (int64_t j = 0; j < n; j += 16) {
    __mmask16 k = head_mask(n - j);
    _mm512_mask_storeu_ps(x + j, k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), s)));
  }
}

// 16 rows at a time: one gather per column reads x[r0..r0+16, c], one store writes xt[c, r0..].
MT_AVX512 void transpose_avx512(const float* x, int64_t rows, int64_t cols, int64_t ld, float* xt, int64_t ldt) {
  __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                   _mm512_set1_epi32(int32_t(ld)));
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {
    __mmask16 k = head_mask(rows - r0);
    const float* xr = x + r0 * ld;
    for (int64_t c = 0; c < cols; ++c)
      _mm512_mask_storeu_ps(xt + c * ldt + r0, k,
                            _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, idx, xr + c, sizeof(float)));
  }
}

}  // namespace mt::cpu::attn
