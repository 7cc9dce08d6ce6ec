// Helpers shared by the tests: seeded random tensors and comparisons.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/rng.h"
#include "runtime/tensor.h"

namespace testutil {

// Uniform in [lo, hi), seeded, any float dtype.
inline mt::Tensor random(const mt::Shape& shape, mt::DType dt, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  mt::Tensor t = mt::Tensor::empty(shape, mt::DType::F64);
  double* p = t.data<double>();
  mt::RngKey key{seed, 0xC0FFEE};
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = lo + (hi - lo) * double(mt::uniform_at(key, uint64_t(i)));
  return dt == mt::DType::F64 ? t : t.to(dt);
}

inline mt::Tensor random_ids(const mt::Shape& shape, int64_t limit, uint64_t seed, mt::DType dt = mt::DType::I64) {
  mt::Tensor t = mt::Tensor::empty(shape, mt::DType::I64);
  mt::RngKey key{seed, 0xBEEF};
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<int64_t>()[i] = int64_t(mt::philox4x32(key, uint64_t(i)).v[0] % uint64_t(limit));
  return dt == mt::DType::I64 ? t : t.to(dt);
}

template <class A, class B>
double max_abs_diff(const A& a, const B& b) {
  double m = 0;
  for (int64_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a.data()[i] - b.data()[i]));
  return m;
}

inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

inline double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::fabs(v));
  return m;
}

}  // namespace testutil
