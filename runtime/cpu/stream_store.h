// Stores that bypass the caches (non-temporal, "streaming"), for a large output written once and
// read much later: a plain store first reads its cache line from memory (read for ownership), a
// streaming store does not. The cross-entropy's 16-bit gradient (206 MB in the bench model, read
// back only by the next GEMMs) saves that read. x86-64 only (MOVNTDQ is in every x86-64 CPU;
// AVX/AVX-512 builds store a vector register at a time); elsewhere plain copies.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "runtime/cpu/vec_math.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace mt::cpu {

// Whether an output of `bytes` written in one go is better streamed: larger than the last-level
// cache, its first lines are gone from the cache before its reader comes; a smaller one is better
// left in the cache for it (a 13 MB conversion took 0.28 ms with plain stores, 0.48 ms streamed;
// 412 MB 12.8 ms plain, 8.9 ms streamed). The cache's size: last_level_cache_bytes().
bool worth_streaming(size_t bytes);

// The largest CPU cache Linux lists for CPU 0 (/sys/devices/system/cpu/cpu0/cache; what lscpu
// shows, the VM's own where the host's differs), 32 MiB where it lists none. (glibc's
// sysconf(_SC_LEVEL3_CACHE_SIZE) adds up an AMD socket's L3s: 320 MiB on a 2-core EPYC VM.)
size_t last_level_cache_bytes();

// Tests: worth_streaming compares with `bytes` instead of the cache's size (0: the cache's size again).
void set_streaming_threshold_for_tests(size_t bytes);

// dst[0, bytes) = src[0, bytes): dst's aligned middle streamed, its unaligned head and tail stored
// plainly. Call stream_fence() before another thread reads dst.
inline void stream_copy(void* dst, const void* src, size_t bytes) {
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
#if defined(__x86_64__)
  constexpr size_t kAlign = kVectorBytes;  // a register of the build's widest vectors (vec_math.h)
  size_t head = std::min(bytes, (kAlign - reinterpret_cast<uintptr_t>(d) % kAlign) % kAlign);
  std::memcpy(d, s, head);
  d += head, s += head, bytes -= head;
  for (; bytes >= kAlign; d += kAlign, s += kAlign, bytes -= kAlign) {
    if constexpr (kAlign == 64)
      _mm512_stream_si512(reinterpret_cast<__m512i*>(d), _mm512_loadu_si512(s));
    else if constexpr (kAlign == 32)
      _mm256_stream_si256(reinterpret_cast<__m256i*>(d), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s)));
    else
      _mm_stream_si128(reinterpret_cast<__m128i*>(d), _mm_loadu_si128(reinterpret_cast<const __m128i*>(s)));
  }
#endif
  std::memcpy(d, s, bytes);
}

// dst[0, n) written through a 4 KiB chunk in the cache, streamed a chunk at a time:
// make(chunk, start, count) fills chunk[0, count) with what dst[start, start + count) gets.
template <class T, class Make>
void stream_in_chunks(T* dst, int64_t n, Make&& make) {
  constexpr int64_t kChunk = 4096 / int64_t(sizeof(T));
  alignas(64) T chunk[kChunk];
  for (int64_t start = 0; start < n; start += kChunk) {
    int64_t count = std::min(kChunk, n - start);
    make(chunk, start, count);
    stream_copy(dst + start, chunk, size_t(count) * sizeof(T));
  }
}

// Orders this thread's streaming stores before its later stores (call it before the threads meet).
inline void stream_fence() {
#if defined(__x86_64__)
  _mm_sfence();
#endif
}

}  // namespace mt::cpu
