// AVX-512 helpers shared by the attention's row operations (attention_rows.cpp) and the epilogues
// of its micro-kernels (attention_tile_gemm.cpp). Include only from files compiled for x86-64;
// the functions carry their own target attribute.
#pragma once

#include <immintrin.h>

#include "runtime/cpu/vec_math.h"

namespace mt::cpu::attn {

// vexp2<float> (vec_math.h) on 16 lanes: 2^t = 2^n * 2^f, n = round(t), f = t - n, the same
// degree-6 polynomial, the scaling by 2^n and the cut to 0 below -126 in one masked VSCALEFPS (a
// multiply by 2^n, exact but where it overflows to +inf). Equal to vexp2 bit for bit on every f32
// but +inf (checked on all 2^32 on AMD Zen 4; a test sweeps them in steps): there f = inf - inf is
// NaN and the result is VSCALEFPS's of (NaN, +inf), +inf on Zen 4. The attention's exps take
// t = S - v in base 2 (attention.cpp), v a row's lse, maximum or diagonal score; a row whose exps
// sum to 2^100 or more is redone (shifted_sums_fit), so no exp it keeps comes near overflow.
// (VREDUCEPS gives t - round(t) in one instruction, but VSCALEFPS still needs n = round(t), so it
// saves nothing; with n = floor(t), which VSCALEFPS takes from t itself, it would save the
// rounding, but that f in [0, 1) is not rounded as t - floor(t) is for small negative t
// (0x1.fffffep-1 for -1e-10, where the subtraction gives 1), so the portable form could not match.)
__attribute__((target("avx512f"), always_inline)) inline __m512 exp2_16(__m512 t) {
  __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(kExp2Poly[0]);
#pragma GCC unroll 8
  for (int i = 1; i < 7; ++i) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2Poly[i]));
  // p * 2^n where t is not below -126 (NaN lanes included), 0 where it is
  __mmask16 in_range = _mm512_cmp_ps_mask(t, _mm512_set1_ps(-126.0f), _CMP_NLT_UQ);
  return _mm512_maskz_scalef_ps(in_range, p, n);
}

}  // namespace mt::cpu::attn
