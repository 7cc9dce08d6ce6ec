// Vectorizable transcendental functions for the CPU kernels.
//
// std::exp and std::tanh are library calls that GCC cannot vectorize without -ffast-math (which
// would also break the -inf handling that softmax and masking rely on). vexp<float> is a branch-
// free exp written in plain arithmetic, so loops over it auto-vectorize: exp(x) = 2^n * 2^f with
// n = round(x log2 e), f in [-1/2, 1/2], 2^f = e^(f ln 2) by a degree-7 Taylor polynomial
// (relative error < 3e-9, below float's rounding). Inputs below -87.3 give exactly 0; inputs above 88.3
// saturate at exp(88.3) ~ 2.2e38 instead of overflowing.
// The f64 versions are the library functions: f64 is for checking, not speed.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace mt::cpu {

// n + 127 (f32's exponent field of 2^n) from biased = 1.5 * 2^23 + n, |n| < 2^22, whose low
// mantissa bits hold n: read from the bits, not by converting the float n to an integer (a NaN
// would be undefined behaviour there; here it gives some number, and the caller's result is NaN).
inline uint32_t biased_exponent(float biased) {
  uint32_t b;
  std::memcpy(&b, &biased, sizeof b);
  return b - 0x4B400000u + 127u;
}

// 2^(e - 127) from f32's exponent field e in [1, 254] (0 gives 0).
inline float pow2_of_exponent_field(uint32_t e) {
  uint32_t bits = e << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return scale;
}

template <class T>
inline T vexp(T x) {
  return std::exp(x);
}

template <>
inline float vexp<float>(float x) {
  // Plain compares and the 1.5*2^23 rounding trick instead of fmin/fmax/floor, which GCC does
  // not vectorize without -ffast-math.
  float xc = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
  float biased = xc * 1.44269504088896341f + 12582912.0f;                  // 1.5 * 2^23 + n
  float n = biased - 12582912.0f;                                          // round to nearest
  float y = (xc - n * 0.693145751953125f) - n * 1.42860682030941723e-06f;  // x - n ln2, two-part ln2
  float p = 1.0f / 5040.0f;
  p = p * y + 1.0f / 720.0f;
  p = p * y + 1.0f / 120.0f;
  p = p * y + 1.0f / 24.0f;
  p = p * y + 1.0f / 6.0f;
  p = p * y + 0.5f;
  p = p * y + 1.0f;
  p = p * y + 1.0f;
  return x < -87.3f ? 0.0f : p * pow2_of_exponent_field(biased_exponent(biased));
}

// 2^t, for the attention's softmax, whose scores are kept in base 2 (S log2 e) so that an exp costs
// no multiply by log2 e and no two-part reduction: 2^t = 2^n * 2^f, n = round(t) (to nearest, even
// at ties), f = t - n in [-1/2, 1/2] exactly, 2^f by a degree-6 polynomial (a Chebyshev fit of
// (2^f - 1) / f, coefficients rounded to f32): relative error < 7.4e-8 (0.88 ulp), measured over
// every f32 t from -126 to 128 (9.7e-8 where the compiler cannot fuse the multiply-adds); 2^k
// exact for integers k. Below -126 exactly 0 (no subnormal results); +inf from t = 128 on (t
// clamped to 128) and where the result rounds past f32's largest; NaN stays NaN. The f64 version
// is the library function. kExp2Poly: the polynomial's coefficients, highest power first (shared
// with the AVX-512 form, runtime/cpu/attention_simd.h).
inline constexpr float kExp2Poly[7] = {
    1.545316336e-04f, 1.339086331e-03f, 9.618083015e-03f, 5.550356954e-02f, 2.402265072e-01f, 6.931471825e-01f, 1.0f};

template <class T>
inline T vexp2(T t) {
  return std::exp2(t);
}

template <>
inline float vexp2<float>(float t) {
  float tc = t < -127.0f ? -127.0f : (t > 128.0f ? 128.0f : t);
  float biased = tc + 12582912.0f;  // 1.5 * 2^23 + n
  float n = biased - 12582912.0f;   // round to nearest
  float f = tc - n;                 // exact (|n| < 2^23, and t, n within a factor 2)
  float p = kExp2Poly[0];
  p = p * f + kExp2Poly[1];
  p = p * f + kExp2Poly[2];
  p = p * f + kExp2Poly[3];
  p = p * f + kExp2Poly[4];
  p = p * f + kExp2Poly[5];
  p = p * f + kExp2Poly[6];
  // p * 2^n, exact but for overflow: n = 128 (t from 127.5 on) as p * 2^127 * 2, finite below t = 128;
  // n = -127: a scale of 0 (cut below anyway)
  uint32_t e = biased_exponent(biased);
  float top = e > 254u ? 2.0f : 1.0f;
  return t < -126.0f ? 0.0f : p * pow2_of_exponent_field(e > 254u ? 254u : e) * top;
}

// tanh(u) = 1 - 2 / (exp(2u) + 1); exact limits +-1 for large |u|.
template <class T>
inline T vtanh(T u) {
  return std::tanh(u);
}

template <>
inline float vtanh<float>(float u) {
  return 1.0f - 2.0f / (vexp(2.0f * u) + 1.0f);
}

// Row reductions that vectorize without -ffast-math: kLanes independent partial results, one
// per vector lane, combined at the end (sums in f64). f(j) returns element j's value (and may
// store to element j). The order of additions is fixed, so results are deterministic.
constexpr int64_t kLanes = 16;

template <class T, class F>
inline double lane_sum(int64_t n, F&& f) {
  T acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) acc[l] += f(j + l);
  double total = 0;
  for (; j < n; ++j) total += double(f(j));
  for (int64_t l = 0; l < kLanes; ++l) total += double(acc[l]);
  return total;
}

// y[j] = exp(x[j] - shift) for j < n; returns sum_j y[j]. Kept as two plain loops: an exp loop
// that stores vectorizes better than one fused with the reduction.
template <class T>
inline double exp_shifted_sum(const T* x, T shift, T* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] = vexp(x[j] - shift);
  return lane_sum<T>(n, [&](int64_t j) { return y[j]; });
}

// The build's widest vector registers, for GCC vector types: a comparison-select (a > b ? a : b)
// on them becomes one MAXPS/VMAXPS, where the same loop on T acc[kLanes] stays scalar (GCC does not
// vectorize it without -ffast-math).
#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif

// max_j x[j], j < n: lane l of the kLanes running maxima takes x[j] for j % kLanes == l (NaN is
// not sticky: a > b ? a : b keeps b when either is NaN, as MAXPS does).
template <class T>
inline T lane_max(const T* x, int64_t n) {
  typedef T Vec __attribute__((vector_size(kVectorBytes)));
  constexpr int64_t per_vector = kVectorBytes / int64_t(sizeof(T)), vectors = kLanes / per_vector;
  static_assert(vectors * per_vector == kLanes);
  Vec acc[vectors];
  for (Vec& a : acc) a = Vec{} - T(INFINITY);  // (every lane)
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int64_t v = 0; v < vectors; ++v) {
      Vec xv;
      std::memcpy(&xv, x + j + v * per_vector, sizeof xv);
      acc[v] = acc[v] > xv ? acc[v] : xv;
    }
  T m = -INFINITY;
  for (; j < n; ++j) m = m > x[j] ? m : x[j];
  for (const Vec& a : acc)
    for (int64_t l = 0; l < per_vector; ++l) m = m > a[l] ? m : a[l];
  return m;
}

}  // namespace mt::cpu
