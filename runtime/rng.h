// Counter-based random numbers (Philox-4x32-10, Salmon et al. 2011).
//
// A random value is a pure function of (key, counter): no generator state to carry, save or
// split. Keys come from (seed, step, layer, role) so that a run is reproducible, resumes
// bit-exactly and gives the same numbers whatever the number of threads or ranks sharing it.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define MT_HOST_DEVICE __host__ __device__
#else
#define MT_HOST_DEVICE
#endif

namespace mt {

// A stream of random numbers: (seed, stream) pick the stream; `offset` shifts where element 0 of a
// tensor starts in it. Keying dropout by the global sample index (offset = first sample x
// elements per sample) gives every sample the same mask whatever micro-batch or rank it lands in.
struct RngKey {
  uint64_t seed = 0;
  uint64_t stream = 0;
  uint64_t offset = 0;
};

// Mixes the parts of a random stream's identity into one key (splitmix64 steps).
inline RngKey rng_key(uint64_t seed, uint64_t step, uint64_t layer, uint64_t role) {
  auto mix = [](uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  };
  uint64_t s = mix(step ^ mix(layer ^ mix(role)));
  return {seed, s, 0};
}

struct Philox4 {
  uint32_t v[4];
};

// Philox-4x32-10 of the 128-bit counter (counter, key.stream) under the 64-bit key key.seed.
MT_HOST_DEVICE inline Philox4 philox4x32(RngKey key, uint64_t counter) {
  uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32);
  uint32_t c2 = uint32_t(key.stream), c3 = uint32_t(key.stream >> 32);
  uint32_t k0 = uint32_t(key.seed), k1 = uint32_t(key.seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t(0xD2511F53u) * c0;
    uint64_t p1 = uint64_t(0xCD9E8D57u) * c2;
    uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// Uniform in [0, 1) from 32 random bits (24-bit resolution, exact in float).
MT_HOST_DEVICE inline float uniform01(uint32_t bits) {
  return float(bits >> 8) * (1.0f / 16777216.0f);
}

// The i-th uniform of a stream: element j = offset + i uses word j%4 of counter j/4.
MT_HOST_DEVICE inline float uniform_at(RngKey key, uint64_t i) {
  uint64_t j = key.offset + i;
  return uniform01(philox4x32(key, j >> 2).v[j & 3]);
}

}  // namespace mt
