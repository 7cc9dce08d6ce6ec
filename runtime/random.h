// Seeded random tensors from the counter-based generator (runtime/rng.h): element i of a tensor
// depends only on (key, i), so initialisation is reproducible on any device or thread count.
#pragma once

#include "runtime/rng.h"
#include "runtime/tensor.h"

namespace mt {

// A standard normal from counter i (Box-Muller on two 24-bit uniforms of the same counter).
double normal_at(RngKey key, uint64_t i);

Tensor randn(const Shape& shape, DType dtype, RngKey key, double mean = 0.0, double std = 1.0,
             Device device = Device::cpu());
Tensor rand_uniform(const Shape& shape, DType dtype, RngKey key, double lo = 0.0, double hi = 1.0,
                    Device device = Device::cpu());

}  // namespace mt
