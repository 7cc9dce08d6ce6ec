// Softmax over the last dimension (runtime/cpu/softmax.cpp), one block per row, f64 accumulation.
//   forward:  x [N,C] -> y [N,C],  y = exp(x - max) / sum exp(x - max)
//   backward: dx [N,C] += y * (dy - sum_c(dy*y))
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device_math.cuh"
#include "runtime/dispatch.h"

namespace mt::cuda {
namespace {

template <class T>
__global__ void softmax_kernel(const T* x, int64_t c, T* y) {
  __shared__ double scratch[32];
  int64_t base = int64_t(blockIdx.x) * c;
  double m = -CUDART_INF;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) m = max(m, double(x[base + j]));
  m = block_max(m, scratch);
  double s = 0;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) s += exp(double(x[base + j]) - m);
  s = block_sum(s, scratch);
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) y[base + j] = T(exp(double(x[base + j]) - m) / s);
}

template <class T>
__global__ void softmax_backward_kernel(const T* y, const T* dy, int64_t c, T* dx) {
  __shared__ double scratch[32];
  int64_t base = int64_t(blockIdx.x) * c;
  double s = 0;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) s += double(dy[base + j]) * double(y[base + j]);
  s = block_sum(s, scratch);
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
    dx[base + j] += T(double(y[base + j]) * (double(dy[base + j]) - s));
}

}  // namespace

void CudaBackend::softmax_forward(const Tensor& x, Tensor& y) {
  int64_t c = x.size(-1), n = x.numel() / std::max<int64_t>(c, 1);
  if (n == 0) return;
  dispatch_float(x.dtype(), "softmax", [&](auto zero) {
    using T = decltype(zero);
    softmax_kernel<<<row_blocks(n), kRowThreads>>>(x.data<T>(), c, y.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  int64_t c = y.size(-1), n = y.numel() / std::max<int64_t>(c, 1);
  if (n == 0) return;
  dispatch_float(y.dtype(), "softmax_backward", [&](auto zero) {
    using T = decltype(zero);
    softmax_backward_kernel<<<row_blocks(n), kRowThreads>>>(y.data<T>(), dy.data<T>(), c, dx.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

}  // namespace mt::cuda
