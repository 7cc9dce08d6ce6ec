// The 16-bit float formats <-> float32 on raw bits, for host and device code alike (the CPU
// backend, the CUDA kernels and the tests convert the same way).
//
// bfloat16: the upper 16 bits of a float32; float -> bf16 rounds to nearest even, NaN stays quiet.
//
// IEEE 754 binary16 (fp16):
//   1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits; largest finite 65504, smallest
//   normal 2^-14, smallest subnormal 2^-24. float -> half rounds to nearest even; a value that
//   rounds past 65504 becomes infinity; NaN stays a (quiet) NaN with its sign.
#pragma once

#include <cstdint>
#include <cstring>

#include "runtime/rng.h"  // MT_HOST_DEVICE

namespace mt {

MT_HOST_DEVICE inline uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

MT_HOST_DEVICE inline float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

MT_HOST_DEVICE inline float bf16_bits_to_float(uint16_t b) {
  return bits_float(uint32_t(b) << 16);
}

MT_HOST_DEVICE inline uint16_t float_to_bf16_bits(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

MT_HOST_DEVICE inline float half_bits_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (man << 13));  // inf / NaN
  if (exp == 0) {  // zero or subnormal: man * 2^-24, exact in float
    float v = float(man) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp + 112u) << 23) | (man << 13));  // rebias 15 -> 127
}

MT_HOST_DEVICE inline uint16_t float_to_half_bits(float f) {
  uint32_t u = float_bits(f);
  uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN (quiet)
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);                        // >= 65520 rounds to infinity
  if (a < 0x38800000u) {
    // Below 2^-14: a subnormal half (or zero). Scale into units of 2^-24 and round to nearest
    // even in float arithmetic: adding 2^23 * 2^-24... done on the integer mantissa instead.
    if (a < 0x33000000u) return sign;  // below 2^-25: rounds to zero
    uint32_t exp = a >> 23, man = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - exp;  // value = man * 2^(exp-150); in units of 2^-24: man >> (126 - exp)
    uint32_t q = man >> shift, rest = man & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (q & 1u))) ++q;
    return uint16_t(sign | q);
  }
  // Normal: drop 13 mantissa bits with round to nearest even, rebias 127 -> 15.
  uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
  return uint16_t(sign | ((r - 0x38000000u) >> 13));
}

// fp16 as a storage type on the host (converted to and from float), like bf16 in dtype.h.
struct f16 {
  uint16_t bits = 0;
  f16() = default;
  explicit f16(float f) : bits(float_to_half_bits(f)) {}
  explicit operator float() const { return half_bits_to_float(bits); }
};

}  // namespace mt
