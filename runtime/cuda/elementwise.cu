// axpby, binary ops, whole-tensor reductions and row sums (runtime/cpu/elementwise.cpp): one
// thread per element; a reduction is one block with f64 sums.
//   axpby     y = alpha x + beta y (beta = 0: y is not read)
//   binary    out = a op b, same shapes
//   reduce    x -> out [1]: sum, sum of squares, max, abs max (a NaN wins the max)
//   sum_rows  x [N,C] -> out [C] = beta out + sum_n x[n] (a thread per column, rows in order)
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device_math.cuh"
#include "runtime/dispatch.h"

namespace mt::cuda {
namespace {

template <class T>
__global__ void axpby_kernel(T a, const T* x, T b, T* y, int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = b == T(0) ? a * x[i] : a * x[i] + b * y[i];
}

template <class T>
__global__ void binary_kernel(BinaryOp op, const T* a, const T* b, T* out, int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  switch (op) {
    case BinaryOp::Add:
      out[i] = a[i] + b[i];
      break;
    case BinaryOp::Sub:
      out[i] = a[i] - b[i];
      break;
    case BinaryOp::Mul:
      out[i] = a[i] * b[i];
      break;
    case BinaryOp::Div:
      out[i] = a[i] / b[i];
      break;
  }
}

__device__ double nan_max(double a, double b) {
  return (isnan(a) || a >= b) ? a : b;
}

template <class T>
__global__ void reduce_kernel(ReduceOp op, const T* x, int64_t n, T* out) {  // one block
  __shared__ double scratch[32];
  bool is_max = op == ReduceOp::Max || op == ReduceOp::AbsMax;
  double acc = is_max ? -CUDART_INF : 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    double v = double(x[i]);
    if (op == ReduceOp::Sum)
      acc += v;
    else if (op == ReduceOp::SumSquares)
      acc += v * v;
    else
      acc = nan_max(acc, op == ReduceOp::AbsMax ? fabs(v) : v);
  }
  // NaN-propagating max across the block: a NaN anywhere makes the result NaN
  if (is_max) {
    __shared__ int any_nan;
    if (threadIdx.x == 0) any_nan = 0;
    __syncthreads();
    if (isnan(acc)) any_nan = 1;
    double m = block_max(isnan(acc) ? -CUDART_INF : acc, scratch);
    __syncthreads();
    if (threadIdx.x == 0) out[0] = T(any_nan ? CUDART_NAN : m);
  } else {
    double s = block_sum(acc, scratch);
    if (threadIdx.x == 0) out[0] = T(s);
  }
}

// out[c] = beta out[c] + sum_n x[n, c]: one thread per column, rows in order (deterministic).
template <class T>
__global__ void sum_rows_kernel(const T* x, int64_t n, int64_t c, T beta, T* out) {
  int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= c) return;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(x[i * c + j]);
  out[j] = beta == T(0) ? T(s) : T(beta * out[j] + s);
}

}  // namespace

void CudaBackend::axpby(double alpha, const Tensor& x, double beta, Tensor& y) {
  dispatch_float(y.dtype(), "axpby", [&](auto zero) {
    using T = decltype(zero);
    axpby_kernel<<<blocks_for(y.numel()), 256>>>(T(alpha), x.data<T>(), T(beta), y.data<T>(), y.numel());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  dispatch_float(out.dtype(), "binary", [&](auto zero) {
    using T = decltype(zero);
    binary_kernel<<<blocks_for(out.numel()), 256>>>(op, a.data<T>(), b.data<T>(), out.data<T>(), out.numel());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::reduce(ReduceOp op, const Tensor& x, Tensor& out) {
  dispatch_float(x.dtype(), "reduce", [&](auto zero) {
    using T = decltype(zero);
    reduce_kernel<<<1, 1024>>>(op, x.data<T>(), x.numel(), out.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::sum_rows(const Tensor& x, double beta, Tensor& out) {
  dispatch_float(x.dtype(), "sum_rows", [&](auto zero) {
    using T = decltype(zero);
    int64_t c = x.size(1);
    sum_rows_kernel<<<blocks_for(c), 256>>>(x.data<T>(), x.size(0), c, T(beta), out.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

}  // namespace mt::cuda
