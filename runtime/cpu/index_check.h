// Range check of index tensors (token ids, targets) before a parallel kernel uses them.
#pragma once

#include "runtime/backend.h"
#include "runtime/error.h"
#include "runtime/tensor.h"

namespace mt::cpu {

template <class I>
void check_index_range(const char* op, const char* what, const I* idx, int64_t n, int64_t limit) {
  for (int64_t i = 0; i < n; ++i)
    MT_CHECK(idx[i] >= 0 && idx[i] < limit, op, ": ", what, "[", i, "] = ", int64_t(idx[i]), " is outside [0, ", limit,
             ")");
}

// Ids must lie in the whole vocabulary (shard.total, or `rows` when 0); VocabShard::row then
// gives an id's row in a table holding `rows` rows from shard.start (-1: another shard's).
template <class I>
void check_vocab_ids(const char* op, const char* what, const I* idx, int64_t n, int64_t rows, const VocabShard& shard) {
  check_index_range(op, what, idx, n, shard.total > 0 ? shard.total : rows);
}

}  // namespace mt::cpu
