// Test helper: all experts start as copies of one initialisation (as DeepSpeed); tests that need
// each expert to have its own weights and gradients shift them by a pattern of the global id.
#pragma once

#include <cmath>

#include "autograd/parameters.h"

namespace testutil {

inline void break_expert_symmetry(const mt::ParameterRegistry& reg) {
  for (const mt::Parameter& p : reg.all())
    if (p.tags.expert) {
      double* d = p.var.value().data<double>();
      for (int64_t i = 0; i < p.var.value().numel(); ++i) d[i] += 0.1 * std::sin(double(i + 7 * p.tags.expert->expert));
    }
}

}  // namespace testutil
