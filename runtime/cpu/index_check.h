// Range check of index tensors (token ids, targets) before a parallel kernel uses them.
#pragma once

#include "runtime/error.h"
#include "runtime/tensor.h"

namespace mt::cpu {

template <class I>
void check_index_range(const char* op, const char* what, const I* idx, int64_t n, int64_t limit) {
  for (int64_t i = 0; i < n; ++i)
    MT_CHECK(idx[i] >= 0 && idx[i] < limit, op, ": ", what, "[", i, "] = ", int64_t(idx[i]), " is outside [0, ", limit,
             ")");
}

}  // namespace mt::cpu
