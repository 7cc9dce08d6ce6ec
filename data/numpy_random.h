// numpy's legacy RandomState(seed) as Megatron uses it to shuffle: MT19937 seeded with
// init_genrand(seed) (= std::mt19937(seed)), and RandomState.shuffle of a 1-D array: for i from
// n-1 down to 1, swap a[i] with a[j], j uniform in [0, i] by masked rejection sampling
// (numpy's random_interval). Bit-exact with numpy (tests/data: vectors numpy printed).
#pragma once

#include <cstdint>
#include <random>
#include <utility>

namespace mt::data {

class NumpyRandomState {
 public:
  explicit NumpyRandomState(uint32_t seed) : gen_(seed) {}

  // Uniform integer in [0, max].
  uint64_t random_interval(uint64_t max) {
    if (max == 0) return 0;
    uint64_t mask = max;
    for (int shift = 1; shift <= 32; shift *= 2) mask |= mask >> shift;
    uint64_t value;
    if (max <= 0xffffffffull) {
      do value = uint64_t(gen_()) & mask;
      while (value > max);
    } else {
      do {
        uint64_t hi = gen_();
        value = ((hi << 32) | uint64_t(gen_())) & mask;
      } while (value > max);
    }
    return value;
  }

  template <class T>
  void shuffle(T* a, int64_t n) {
    for (int64_t i = n - 1; i >= 1; --i) std::swap(a[i], a[random_interval(uint64_t(i))]);
  }

 private:
  std::mt19937 gen_;
};

}  // namespace mt::data
