// Error checks for the CUDA runtime and cuBLAS (a failed call throws mt::Error naming the call,
// the file and line, and the library's message), launch shapes, and the host-side id check.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "runtime/backend.h"
#include "runtime/error.h"
#include "runtime/tensor.h"

#define MT_CUDA_CHECK(call)                                                                             \
  do {                                                                                                  \
    cudaError_t mt_err_ = (call);                                                                       \
    MT_CHECK(mt_err_ == cudaSuccess, "CUDA call ", #call, " failed at ", __FILE__, ":", __LINE__, ": ", \
             cudaGetErrorString(mt_err_));                                                              \
  } while (0)

// After a kernel launch: the launch's own error (a bad configuration), not the kernel's outcome.
#define MT_CUDA_LAUNCHED() MT_CUDA_CHECK(cudaGetLastError())

#define MT_CUBLAS_CHECK(call)                                                                                \
  do {                                                                                                       \
    cublasStatus_t mt_st_ = (call);                                                                          \
    MT_CHECK(mt_st_ == CUBLAS_STATUS_SUCCESS, "cuBLAS call ", #call, " failed at ", __FILE__, ":", __LINE__, \
             ": status ", int(mt_st_));                                                                      \
  } while (0)

namespace mt::cuda {

// Blocks of `threads` covering n items (at least one block).
inline unsigned blocks_for(int64_t n, int threads = 256) {
  return unsigned(std::max<int64_t>((n + threads - 1) / threads, 1));
}

// Row kernels (layernorm, softmax, cross-entropy, distillation): one block of kRowThreads per
// row of n rows.
constexpr int kRowThreads = 256;
inline unsigned row_blocks(int64_t n) {
  return unsigned(std::max<int64_t>(n, 0));
}

// Token ids or targets copied to the host and checked against [0, limit): the CPU backend's
// error, before a kernel could read out of bounds.
template <class I>
void check_ids(const Tensor& idx, int64_t limit, const char* op) {
  Tensor host = idx.to(Device::cpu());
  const I* p = host.data<I>();
  for (int64_t i = 0; i < host.numel(); ++i)
    MT_CHECK(p[i] >= 0 && p[i] < limit, op, ": id[", i, "] = ", int64_t(p[i]), " is outside [0, ", limit, ")");
}

// Token ids or targets checked against the whole vocabulary: shard.total, or `rows` (the shard's
// own size) when 0.
template <class I>
void check_vocab_ids(const Tensor& idx, int64_t rows, const VocabShard& shard, const char* op) {
  check_ids<I>(idx, shard.total > 0 ? shard.total : rows, op);
}

}  // namespace mt::cuda
