// Inverted dropout with a counter-based mask (runtime/dropout_mask.h, the CPU's: the same Philox
// masks), one thread per element; nothing is stored between forward and backward.
//   forward:  x, y any shape: y[i] = x[i] * keep(i) / (1 - p),  keep(i) = uniform_at(key, i) >= p
//   backward: dx[i] += dy[i] * keep(i) / (1 - p)   (the same mask, regenerated from the key)
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/dispatch.h"
#include "runtime/dropout_mask.h"

namespace mt::cuda {
namespace {

// out[i] = in[i] * mask(i) (+ out[i] when accumulating).
template <class T>
__global__ void dropout_kernel(const T* in, T* out, int64_t n, float p, T scale, RngKey key, bool accumulate) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  T m = dropout_keep_scale(key, uint64_t(i), p, scale);
  out[i] = accumulate ? out[i] + in[i] * m : in[i] * m;
}

template <class T>
void apply_dropout_mask(const T* in, T* out, int64_t n, double p, RngKey key, bool accumulate) {
  dropout_kernel<<<blocks_for(n), 256>>>(in, out, n, float(p), T(1.0 / (1.0 - p)), key, accumulate);
}

}  // namespace

void CudaBackend::dropout_forward(const Tensor& x, double p, RngKey key, Tensor& y) {
  dispatch_float(x.dtype(), "dropout", [&](auto zero) {
    using T = decltype(zero);
    apply_dropout_mask(x.data<T>(), y.data<T>(), x.numel(), p, key, false);
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::dropout_backward(const Tensor& dy, double p, RngKey key, Tensor& dx) {
  dispatch_float(dy.dtype(), "dropout_backward", [&](auto zero) {
    using T = decltype(zero);
    apply_dropout_mask(dy.data<T>(), dx.data<T>(), dy.numel(), p, key, true);
  });
  MT_CUDA_LAUNCHED();
}

}  // namespace mt::cuda
