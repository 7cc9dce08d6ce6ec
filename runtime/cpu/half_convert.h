// f32 -> bf16 for host loops: round to nearest even, a NaN kept quiet, as runtime/float16.h's
// float_to_bf16_bits (the same bits), written without a branch so that its loops vectorize.
//   s [n] f32 -> d [n] bf16
#pragma once

#include <cstdint>
#include <cstring>

#include "runtime/dtype.h"

namespace mt::cpu {

// One value's bf16 bits (float16.h's float_to_bf16_bits without its branch).
inline uint16_t bf16_bits_vectorizable(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, quiet_nan = (u >> 16) | 0x40u;
  return uint16_t((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

inline void round_into(const float* s, bf16* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i].bits = bf16_bits_vectorizable(s[i]);
}

// f rounded to bf16 and widened back: float(bf16(f)), for an f32 holding bf16's values.
inline float bf16_rounded_vectorizable(float f) {
  uint32_t u = uint32_t(bf16_bits_vectorizable(f)) << 16;
  float r;
  std::memcpy(&r, &u, sizeof r);
  return r;
}

// d[i] = s[i] rounded to bf16 and widened back (d may be s).
inline void round_through_bf16(const float* s, float* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = bf16_rounded_vectorizable(s[i]);
}

}  // namespace mt::cpu
