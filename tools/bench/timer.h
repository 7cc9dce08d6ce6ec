// Wall-clock timing for benchmarks: warm up, pick a repeat count that fills ~target seconds,
// report the median of several such runs (robust to a noisy neighbour).
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace mt::bench {

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Seconds per call of fn (median over `samples` runs of `reps` calls each).
template <class F>
double time_per_call(F&& fn, double target_seconds = 0.05, int samples = 5) {
  fn();  // warm-up
  double t0 = now_seconds();
  fn();
  double once = std::max(now_seconds() - t0, 1e-7);
  int reps = std::max(1, int(target_seconds / once));
  std::vector<double> per_call;
  for (int s = 0; s < samples; ++s) {
    double start = now_seconds();
    for (int r = 0; r < reps; ++r) fn();
    per_call.push_back((now_seconds() - start) / reps);
  }
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

}  // namespace mt::bench
