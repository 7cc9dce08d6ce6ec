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

// The median of v (the mean of the middle two for an even count).
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

// Two implementations of the same work, timed in alternation (a, b, a, b, ...) so that clock
// drift and a noisy neighbour hit both alike. Returns the median of the per-round ratios
// time(a) / time(b), and each one's median seconds per call.
struct PairTiming {
  double seconds_a, seconds_b, ratio_a_over_b;
};

template <class FA, class FB>
PairTiming time_pair(FA&& fa, FB&& fb, double target_seconds = 0.05, int rounds = 9) {
  fa();
  fb();
  double t0 = now_seconds();
  fa();
  double once = std::max(now_seconds() - t0, 1e-7);
  int reps = std::max(1, int(target_seconds / once / 2));
  std::vector<double> ta, tb, ratio;
  for (int r = 0; r < rounds; ++r) {
    double s = now_seconds();
    for (int i = 0; i < reps; ++i) fa();
    double a = (now_seconds() - s) / reps;
    s = now_seconds();
    for (int i = 0; i < reps; ++i) fb();
    double b = (now_seconds() - s) / reps;
    ta.push_back(a);
    tb.push_back(b);
    ratio.push_back(a / b);
  }
  return {median(ta), median(tb), median(ratio)};
}

}  // namespace mt::bench
