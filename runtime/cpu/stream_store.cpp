#include "runtime/cpu/stream_store.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <string>

namespace mt::cpu {

size_t last_level_cache_bytes() {
  static const size_t bytes = [] {
    size_t largest = 0;
    for (int index = 0; index < 8; ++index) {
      std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size");
      std::string text;
      if (!(f >> text) || text.empty() || text[0] < '0' || text[0] > '9') continue;
      size_t value = std::stoull(text), unit = 1;  // "32768K", "2M" or bytes
      if (text.back() == 'K') unit = size_t(1) << 10;
      if (text.back() == 'M') unit = size_t(1) << 20;
      largest = std::max(largest, value * unit);
    }
    return largest ? largest : size_t(32) << 20;
  }();
  return bytes;
}

namespace {
std::atomic<size_t> threshold_for_tests{0};
}  // namespace

void set_streaming_threshold_for_tests(size_t bytes) {
  threshold_for_tests = bytes;
}

bool worth_streaming(size_t bytes) {
  size_t forced = threshold_for_tests;
  return bytes > (forced ? forced : last_level_cache_bytes());
}

}  // namespace mt::cpu
