// Philox: known-answer vector, uniformity, independence of streams.
#include <catch2/catch.hpp>

#include "runtime/rng.h"

using namespace mt;

TEST_CASE("philox4x32-10 matches the Random123 known-answer test", "[runtime][rng]") {
  // Random123 kat_vectors: philox4x32 10 rounds, counter = 0, key = 0.
  Philox4 r = philox4x32(RngKey{0, 0}, 0);
  REQUIRE(r.v[0] == 0x6627e8d5u);
  REQUIRE(r.v[1] == 0xe169c58du);
  REQUIRE(r.v[2] == 0xbc57ac4cu);
  REQUIRE(r.v[3] == 0x9b00dbd8u);
  // counter = digits of pi, key = more digits of pi.
  Philox4 p = philox4x32(RngKey{0x299f31d0a4093822ull, 0x0370734413198a2eull}, 0x85a308d3243f6a88ull);
  REQUIRE(p.v[0] == 0xd16cfe09u);
  REQUIRE(p.v[1] == 0x94fdccebu);
  REQUIRE(p.v[2] == 0x5001e420u);
  REQUIRE(p.v[3] == 0x24126ea1u);
}

TEST_CASE("uniforms lie in 0..1 and are well spread and depend on every key part", "[runtime][rng]") {
  RngKey key = rng_key(42, 3, 1, 7);
  double sum = 0;
  int n = 100000;
  for (int i = 0; i < n; ++i) {
    float u = uniform_at(key, uint64_t(i));
    REQUIRE(u >= 0.0f);
    REQUIRE(u < 1.0f);
    sum += u;
  }
  REQUIRE(sum / n == Approx(0.5).margin(0.005));
  REQUIRE(uniform_at(key, 5) == uniform_at(rng_key(42, 3, 1, 7), 5));
  REQUIRE(uniform_at(key, 5) != uniform_at(rng_key(42, 4, 1, 7), 5));
  REQUIRE(uniform_at(key, 5) != uniform_at(rng_key(43, 3, 1, 7), 5));
  REQUIRE(uniform_at(key, 5) != uniform_at(rng_key(42, 3, 2, 7), 5));
}

TEST_CASE("the key offset shifts where a tensor starts in its stream", "[runtime][rng]") {
  RngKey base = rng_key(5, 1, 2, 3), shifted = base;
  shifted.offset = 1000;
  for (uint64_t i = 0; i < 10; ++i) REQUIRE(uniform_at(shifted, i) == uniform_at(base, 1000 + i));
}
