// The dropout mask shared by every kernel that drops, on the host and the device: element i of a
// stream keeps its value with probability 1 - p and is then scaled by 1 / (1 - p). It is a pure
// function of (key, i), so a backward regenerates exactly the forward's mask and nothing is stored.
#pragma once

#include "runtime/rng.h"

namespace mt {

template <class T>
MT_HOST_DEVICE inline T dropout_keep_scale(RngKey key, uint64_t i, float p, T scale) {
  return uniform_at(key, i) >= p ? scale : T(0);
}

}  // namespace mt
