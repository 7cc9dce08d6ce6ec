// GELU, tanh approximation (the formula: runtime/gelu_math.h, shared with runtime/cpu/gelu.cpp),
// one thread per element. x, y, dy, dx: any shape, same numel.
//   forward:  y = 0.5 x (1 + tanh u)
//   backward: dx += gelu'(x) dy
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/dispatch.h"
#include "runtime/gelu_math.h"

namespace mt::cuda {
namespace {

template <class T>
__global__ void gelu_forward_kernel(const T* x, T* y, int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = gelu_from_tanh(x[i], tanh(gelu_tanh_arg(x[i])));
}

template <class T>
__global__ void gelu_backward_kernel(const T* x, const T* dy, bool accumulate, T* dx, int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dx[i] = (accumulate ? dx[i] : T(0)) + gelu_derivative_from_tanh(x[i], tanh(gelu_tanh_arg(x[i]))) * dy[i];
}

}  // namespace

void CudaBackend::gelu_forward(const Tensor& x, Tensor& y) {
  dispatch_float(x.dtype(), "gelu", [&](auto zero) {
    using T = decltype(zero);
    gelu_forward_kernel<<<blocks_for(x.numel()), 256>>>(x.data<T>(), y.data<T>(), x.numel());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::gelu_backward(const Tensor& x, const Tensor& dy, bool accumulate, Tensor& dx) {
  dispatch_float(x.dtype(), "gelu_backward", [&](auto zero) {
    using T = decltype(zero);
    gelu_backward_kernel<<<blocks_for(x.numel()), 256>>>(x.data<T>(), dy.data<T>(), accumulate, dx.data<T>(),
                                                         x.numel());
  });
  MT_CUDA_LAUNCHED();
}

}  // namespace mt::cuda
