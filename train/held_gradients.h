// The gradient elements this rank holds after a step's backward and reduction, per parameter
// group: elements [begin, begin + grads.numel()) of the group's flat layout.
//   ZeRO 0 and 1: the whole flat gradient buffer (begin 0), the same on every data-parallel rank;
//   ZeRO 2:       this rank's shard (train/zero_gradients.h); the whole is its sum over `partition`.
// The global norm, clipping, unscaling and AdamW read gradients through it (train/optimizer.h).
#pragma once

#include <algorithm>

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
  // The elements of parameter p's gradient this rank holds (undefined when none).
  Tensor part(const Parameter& p) const {
    int g = int(p.group());
    if (!grads[g].defined()) return Tensor();
    int64_t a = std::max(p.offset, begin[g]),
            b = std::min(p.offset + p.var.value().numel(), begin[g] + grads[g].numel());
    return b > a ? grads[g].narrow(a - begin[g], b - a) : Tensor();
  }
};

}  // namespace mt::train
