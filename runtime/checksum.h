// One 64-bit checksum for the files moetrain writes and verifies (checkpoints' safetensors, the
// index cache's .npy): FNV-1a style over 8-byte words with an extra shift-xor, then the tail bytes.
// Fast enough for gigabyte files; not cryptographic (it catches damage, not tampering).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace mt {

inline uint64_t checksum64(const void* data, size_t n) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  uint64_t h = 1469598103934665603ull;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 1099511628211ull;
    h ^= h >> 29;
  }
  for (; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

}  // namespace mt
