// The gradient elements this rank holds after a step's backward and reduction, per parameter
// group: elements [begin, begin + grads.numel()) of the group's flat layout.
//   ZeRO 0 and 1: the whole flat gradient buffer (begin 0), the same on every data-parallel rank;
//   ZeRO 2:       this rank's shard (train/zero_gradients.h); the whole is its sum over `partition`.
// The global norm, clipping, unscaling and AdamW read gradients through it (train/optimizer.h).
#pragma once

#include "autograd/parameters.h"
#include "parallel/communicator.h"

namespace mt::train {

struct HeldGradients {
  Tensor grads[kNumParamGroups];
  int64_t begin[kNumParamGroups] = {0, 0};
  parallel::Communicator* partition[kNumParamGroups] = {nullptr, nullptr};  // nullptr: held whole

  // The registry's flat gradient buffers (ZeRO 0 and 1).
  static HeldGradients whole(const ParameterRegistry& params) {
    HeldGradients h;
    for (int g = 0; g < kNumParamGroups; ++g) h.grads[g] = params.flat_grads(ParamGroup(g));
    return h;
  }
  // Parameter p's elements in [lo, hi) of its group's layout that this rank holds (empty when none).
  Tensor part(const Parameter& p, int64_t* lo = nullptr) const {
    int g = int(p.group());
    int64_t a = std::max(p.offset, begin[g]),
            b = std::min(p.offset + p.var.value().numel(), begin[g] + grads[g].numel());
    if (lo) *lo = a;
    if (!grads[g].defined() || b <= a) return Tensor();
    return grads[g].narrow(a - begin[g], b - a);
  }
};

}  // namespace mt::train
