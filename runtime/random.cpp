#include "runtime/random.h"

#include <cmath>

namespace mt {

double normal_at(RngKey key, uint64_t i) {
  Philox4 r = philox4x32(key, i);
  double u1 = (double(r.v[0] >> 8) + 0.5) / 16777216.0;  // (0, 1): log is finite
  double u2 = double(r.v[1] >> 8) / 16777216.0;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

Tensor randn(const Shape& shape, DType dtype, RngKey key, double mean, double std, Device device) {
  Tensor host = Tensor::empty(shape, DType::F64);
  double* p = host.data<double>();
  for (int64_t i = 0; i < host.numel(); ++i) p[i] = mean + std * normal_at(key, uint64_t(i));
  return host.to(dtype).to(device);
}

Tensor rand_uniform(const Shape& shape, DType dtype, RngKey key, double lo, double hi, Device device) {
  Tensor host = Tensor::empty(shape, DType::F64);
  double* p = host.data<double>();
  for (int64_t i = 0; i < host.numel(); ++i) p[i] = lo + (hi - lo) * double(uniform_at(key, uint64_t(i)));
  return host.to(dtype).to(device);
}

}  // namespace mt
