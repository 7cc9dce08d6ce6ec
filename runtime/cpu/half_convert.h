// f32 -> bf16 / f16 for host loops: round to nearest even, as runtime/float16.h's conversions (the
// same bits), with the bf16 one written without a branch so that its loop vectorizes.
//   s [n] f32 -> d [n] bf16 or f16
#pragma once

#include <cstdint>
#include <cstring>

#include "runtime/dtype.h"

namespace mt::cpu {

inline void round_into(const float* s, bf16* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, s + i, sizeof u);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, quiet_nan = (u >> 16) | 0x40u;
    uint16_t bits = uint16_t((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
    d[i].bits = bits;
  }
}

inline void round_into(const float* s, f16* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = f16(s[i]);
}

}  // namespace mt::cpu
