// AVX-512 helpers shared by the attention's row operations (attention_rows.cpp) and the epilogues
// of its micro-kernels (attention_tile_gemm.cpp). Include only from files compiled for x86-64;
// the functions carry their own target attribute.
#pragma once

#include <immintrin.h>

#include <initializer_list>

namespace mt::cpu::attn {

// vexp<float> (vec_math.h) on 16 lanes: exp(x) = 2^n * 2^f, n = round(x log2 e), the same
// degree-7 polynomial; below -87.3 exactly 0. Unlike vexp, no upper clamp: attention's exps take
// x = S - max, S - lse or S - (a row's diagonal score), never above 88.3 but where the caller
// redoes the block (attention.cpp shifted_sums_fit), and there e^x above f32's range is +inf
// (vexp: e^88.3), NaN for x = +inf. No lower clamp either: lanes below -87.3 (and -inf) are zeroed
// by the final mask whatever the polynomial made of them, and a NaN stays NaN (the clamp by VMAXPS
// this had until 2026-12-06 returned its second operand, -87.3, for a NaN lane: e^-87.3 where vexp
// gives NaN, hiding a NaN score from the loss). Equal to vexp below 88.3, NaN lanes included
// (tested bit for bit).
__attribute__((target("avx512f"), always_inline)) inline __m512 exp16(__m512 x) {
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 y = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  y = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723e-06f), y);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  for (float c : {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f})
    p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(c));
  // p * 2^n (vexp's multiply by the float 2^n) where x is not below -87.3 (NaN lanes included: NaN
  // times 2^NaN), 0 where it is: one instruction for the scaling and the blend to zero
  __mmask16 in_range = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_NLT_UQ);
  return _mm512_maskz_scalef_ps(in_range, p, n);
}

}  // namespace mt::cpu::attn
