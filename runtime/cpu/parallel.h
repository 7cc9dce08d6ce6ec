// OpenMP helpers for the CPU kernels.
#pragma once

#include <omp.h>

#include <algorithm>
#include <exception>
#include <cstdint>
#include <vector>

namespace mt::cpu {

// Below about this many elementary operations, a parallel region costs more than it saves (and
// on oversubscribed cores a thread waiting at the barrier can cost milliseconds).
constexpr int64_t kMinParallelWork = 1 << 15;

// Runs body(begin, end) over [0, n) in parallel chunks; `cost_per_item` (elementary operations
// per item, roughly) decides how many chunks are worth it: none for small work.
template <class F>
void parallel_for(int64_t n, int64_t cost_per_item, F&& body) {
  if (n <= 0) return;
  int64_t work = n * std::max<int64_t>(cost_per_item, 1);
  int64_t chunks = std::min<int64_t>({n, work / kMinParallelWork, 4L * omp_get_max_threads()});
  if (chunks <= 1 || omp_in_parallel()) {
    body(int64_t(0), n);
    return;
  }
  // An exception must not leave an OpenMP region (that terminates the process): the first one is
  // kept and rethrown after the loop (e.g. std::bad_alloc for a scratch buffer).
  std::exception_ptr error;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    try {
      body(n * c / chunks, n * (c + 1) / chunks);
    } catch (...) {
#pragma omp critical(mt_parallel_for_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

// Deterministic column sums over n rows of width c: add_row(i, acc) adds row i's contribution
// to acc[0..c) (f64). Rows are cut into fixed blocks (independent of the thread count), blocks are
// summed in parallel and then added in order, so the result is bit-identical for any thread count.
template <class AddRow>
std::vector<double> blocked_column_sums(int64_t n, int64_t c, AddRow&& add_row) {
  constexpr int64_t kBlockRows = 32;
  int64_t blocks = (n + kBlockRows - 1) / kBlockRows;
  std::vector<double> partial(size_t(std::max<int64_t>(blocks, 1) * c), 0.0);
  parallel_for(blocks, kBlockRows * c, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk)
      for (int64_t i = blk * kBlockRows; i < std::min(n, (blk + 1) * kBlockRows); ++i)
        add_row(i, partial.data() + blk * c);
  });
  std::vector<double> sums(size_t(c), 0.0);
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int64_t j = 0; j < c; ++j) sums[j] += partial[blk * c + j];
  return sums;
}

}  // namespace mt::cpu
