// Fused softmax + cross-entropy (runtime/cpu/cross_entropy.cpp), one block per row, f64
// accumulation; probabilities are never stored.
//   forward:  logits [N,V], targets [N] -> lse [N], target_logits [N] = logits[n, targets[n]]
//   backward: dlogits [N,V] += dlosses[n] * (exp(logits[n] - lse[n]) - onehot(targets[n]));
//             rows with dlosses[n] == 0 are skipped (zeroed when not accumulating); a bf16/f16
//             dlogits (written, not accumulated) gets each value rounded as it is stored
// With a vocabulary shard (columns [start, start + V): runtime/backend.h) a target in another
// shard has target logit 0 and no onehot term. Targets are checked on the host first.
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device_math.cuh"
#include "runtime/dispatch.h"
#include "runtime/float16.h"

namespace mt::cuda {
namespace {

template <class T, class I>
__global__ void ce_forward_kernel(const T* logits, const I* targets, int64_t v, VocabShard shard, T* lse,
                                  T* target_logits) {
  __shared__ double scratch[32];
  const T* row = logits + int64_t(blockIdx.x) * v;
  double l = row_logsumexp(row, v, 1.0, scratch);
  if (threadIdx.x == 0) {
    lse[blockIdx.x] = T(l);
    int64_t col = shard.row(int64_t(targets[blockIdx.x]), v);
    target_logits[blockIdx.x] = col >= 0 ? row[col] : T(0);
  }
}

// dlogits: T, or (written, not accumulated) bf16 / f16 bits: `rounded` says which.
template <class T, class I>
__global__ void ce_backward_kernel(const T* logits, const I* targets, int64_t v, VocabShard shard, const T* lse,
                                   const T* dlosses, bool accumulate, DType rounded, void* dlogits) {
  double g = double(dlosses[blockIdx.x]);
  int64_t base = int64_t(blockIdx.x) * v, col = shard.row(int64_t(targets[blockIdx.x]), v);
  if (g == 0.0 && accumulate) return;
  double l = double(lse[blockIdx.x]);
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    T d = g == 0.0 ? T(0) : T(g * (exp(double(logits[base + j]) - l) - (j == col ? 1.0 : 0.0)));
    if (rounded == DType::BF16) {
      static_cast<uint16_t*>(dlogits)[base + j] = float_to_bf16_bits(float(d));
    } else if (rounded == DType::F16) {
      static_cast<uint16_t*>(dlogits)[base + j] = float_to_half_bits(float(d));
    } else {
      T* out = static_cast<T*>(dlogits) + base + j;
      *out = accumulate ? *out + d : d;
    }
  }
}

}  // namespace

namespace {
// round_to (an f32 gradient holding rounded values) is for a backend whose GEMMs widen 16-bit
// operands (ops::rounded_operand_dtype): never asked here, where they take bf16/f16 as they are.
void check_no_rounding_to(DType round_to, const char* kernel) {
  MT_CHECK(round_to == DType::F32, "cuda ", kernel, ": a gradient rounded to ", dtype_name(round_to),
           " but kept in f32 (the GEMMs here take bf16/f16 operands as they are)");
}
}  // namespace

void CudaBackend::cross_entropy_forward(const Tensor& logits, const Tensor& targets, const VocabShard& shard,
                                        Tensor& lse, Tensor& target_logits) {
  int64_t n = logits.size(0), v = logits.size(1);
  if (n == 0) return;
  dispatch_float_and_index(logits.dtype(), targets.dtype(), "cross_entropy", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    check_vocab_ids<I>(targets, v, shard, "cross_entropy");
    ce_forward_kernel<<<row_blocks(n), kRowThreads>>>(logits.data<T>(), targets.data<I>(), v, shard, lse.data<T>(),
                                                      target_logits.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::cross_entropy_backward(const Tensor& logits, const Tensor& targets, const VocabShard& shard,
                                         const Tensor& lse, const Tensor& dlosses, bool accumulate, Tensor& dlogits,
                                         DType round_to) {
  check_no_rounding_to(round_to, "cross_entropy_backward");
  int64_t n = logits.size(0), v = logits.size(1);
  if (n == 0) return;
  dispatch_float_and_index(logits.dtype(), targets.dtype(), "cross_entropy_backward", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    check_vocab_ids<I>(targets, v, shard, "cross_entropy_backward");
    ce_backward_kernel<<<row_blocks(n), kRowThreads>>>(
        logits.data<T>(), targets.data<I>(), v, shard, lse.data<T>(), dlosses.data<T>(), accumulate,
        is_half_precision(dlogits.dtype()) ? dlogits.dtype() : DType::F32, dlogits.raw());
  });
  MT_CUDA_LAUNCHED();
}

// The forward's kernel and the backward's, one after the other (the same numbers; fusing them per
// row, as the CPU does to read each row once, is left for a measured GPU).
void CudaBackend::cross_entropy_fused(const Tensor& logits, const Tensor& targets, const Tensor& dlosses, Tensor& lse,
                                      Tensor& target_logits, Tensor& dlogits, DType round_to) {
  check_no_rounding_to(round_to, "cross_entropy_fused");
  cross_entropy_forward(logits, targets, {}, lse, target_logits);
  cross_entropy_backward(logits, targets, {}, lse, dlosses, false, dlogits, DType::F32);
}

}  // namespace mt::cuda
