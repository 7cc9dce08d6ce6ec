// Elementwise kernels and reductions (one thread per element; reductions one block, f64 sums).
//   fill x; copy src -> dst (any float dtypes, host <-> device); axpby y = a x + b y;
//   binary out = a op b; reduce x -> out [1] (sum, sum of squares, max, abs max; NaN wins max);
//   sum_rows x [N,C] -> out [C] = beta out + sum_n x; gelu (tanh form) forward and backward (+=);
//   dropout forward y = x keep/(1-p) and backward dx += dy keep/(1-p), keep from Philox(key, i);
//   adamw one update per element (runtime/backend.h's formula).
#include <cmath>

#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device_math.cuh"
#include "runtime/dispatch.h"
#include "runtime/rng.h"

namespace mt::cuda {
namespace {

// Element i of a float tensor of any storage type (f32, f64, bf16, f16), as double; and the store
// back (rounding to nearest even, as the CPU).
__device__ double load(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::F32:
      return double(static_cast<const float*>(p)[i]);
    case DType::F64:
      return static_cast<const double*>(p)[i];
    case DType::F16:
      return double(half_bits_to_float(static_cast<const uint16_t*>(p)[i]));
    default:
      return double(bf16_bits_to_float(static_cast<const uint16_t*>(p)[i]));
  }
}
__device__ void store(void* p, DType t, int64_t i, double v) {
  switch (t) {
    case DType::F32:
      static_cast<float*>(p)[i] = float(v);
      break;
    case DType::F64:
      static_cast<double*>(p)[i] = v;
      break;
    case DType::F16:
      static_cast<uint16_t*>(p)[i] = float_to_half_bits(float(v));
      break;
    default:
      static_cast<uint16_t*>(p)[i] = float_to_bf16_bits(float(v));
      break;
  }
}

__global__ void convert_kernel(const void* src, DType st, void* dst, DType dt, int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) store(dst, dt, i, load(src, st, i));
}

__global__ void fill_kernel(void* x, DType t, int64_t n, double v) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) store(x, t, i, v);
}

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

template <class T>
__global__ void gelu_kernel(const T* x, const T* dy, T* out, int64_t n, bool backward) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const T k = T(0.7978845608028654), c = T(0.044715);
  T v = x[i], t = tanh(k * (v + c * v * v * v));
  if (!backward) {
    out[i] = T(0.5) * v * (T(1) + t);
  } else {
    T d = T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * k * (T(1) + T(3) * c * v * v);
    out[i] += dy[i] * d;
  }
}

template <class T>
__global__ void dropout_kernel(const T* in, T* out, int64_t n, float p, RngKey key, bool accumulate) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  T scale = T(1.0 / (1.0 - double(p)));
  T v = uniform_at(key, uint64_t(i)) >= p ? in[i] * scale : T(0);
  out[i] = accumulate ? out[i] + v : v;
}

template <class T>
__global__ void adamw_kernel(T* w, const T* g, T* m, T* v, int64_t n, AdamWArgs a) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  double gi = double(g[i]);
  double mi = a.beta1 * double(m[i]) + (1 - a.beta1) * gi;
  double vi = a.beta2 * double(v[i]) + (1 - a.beta2) * gi * gi;
  m[i] = T(mi);
  v[i] = T(vi);
  double wi = double(w[i]);
  w[i] = T(wi - a.lr * (mi / a.correction1 / (sqrt(vi / a.correction2) + a.eps) + a.weight_decay * wi));
}

}  // namespace

void CudaBackend::fill(Tensor& x, double value) {
  int64_t n = x.numel();
  if (n == 0) return;
  fill_kernel<<<blocks_for(n), 256>>>(x.raw(), x.dtype(), n, value);
  MT_CUDA_LAUNCHED();
}

// Host <-> device and device <-> device, converting float dtypes (integers must match).
void CudaBackend::copy(const Tensor& src, Tensor& dst) {
  int64_t n = src.numel();
  if (n == 0) return;
  bool same = src.dtype() == dst.dtype();
  MT_CHECK(same || (is_floating(src.dtype()) && is_floating(dst.dtype())), "copy: ", src.str(), " into ", dst.str(),
           ": integer tensors copy only into their own dtype");
  if (src.device().is_cpu() && dst.device().is_cpu()) {  // (not ours, but harmless)
    backend_for(Device::cpu()).copy(src, dst);
    return;
  }
  if (src.device().is_cpu()) {  // host -> device: convert on the host first
    Tensor host = same ? src : src.to(dst.dtype());
    MT_CUDA_CHECK(cudaMemcpy(dst.raw(), host.raw(), host.nbytes(), cudaMemcpyHostToDevice));
    return;
  }
  if (dst.device().is_cpu()) {  // device -> host: convert on the device first
    Tensor dev = src;
    if (!same) {
      dev = Tensor::empty(src.shape(), dst.dtype(), src.device());
      convert_kernel<<<blocks_for(n), 256>>>(src.raw(), src.dtype(), dev.raw(), dst.dtype(), n);
      MT_CUDA_LAUNCHED();
    }
    MT_CUDA_CHECK(cudaMemcpy(dst.raw(), dev.raw(), dev.nbytes(), cudaMemcpyDeviceToHost));
    return;
  }
  if (same) {
    MT_CUDA_CHECK(cudaMemcpy(dst.raw(), src.raw(), src.nbytes(), cudaMemcpyDeviceToDevice));
  } else {
    convert_kernel<<<blocks_for(n), 256>>>(src.raw(), src.dtype(), dst.raw(), dst.dtype(), n);
    MT_CUDA_LAUNCHED();
  }
}

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

void CudaBackend::gelu_forward(const Tensor& x, Tensor& y) {
  dispatch_float(x.dtype(), "gelu", [&](auto zero) {
    using T = decltype(zero);
    gelu_kernel<<<blocks_for(x.numel()), 256>>>(x.data<T>(), (const T*)nullptr, y.data<T>(), x.numel(), false);
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  dispatch_float(x.dtype(), "gelu_backward", [&](auto zero) {
    using T = decltype(zero);
    gelu_kernel<<<blocks_for(x.numel()), 256>>>(x.data<T>(), dy.data<T>(), dx.data<T>(), x.numel(), true);
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::dropout_forward(const Tensor& x, double p, RngKey key, Tensor& y) {
  dispatch_float(x.dtype(), "dropout", [&](auto zero) {
    using T = decltype(zero);
    dropout_kernel<<<blocks_for(x.numel()), 256>>>(x.data<T>(), y.data<T>(), x.numel(), float(p), key, false);
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::dropout_backward(const Tensor& dy, double p, RngKey key, Tensor& dx) {
  dispatch_float(dy.dtype(), "dropout_backward", [&](auto zero) {
    using T = decltype(zero);
    dropout_kernel<<<blocks_for(dy.numel()), 256>>>(dy.data<T>(), dx.data<T>(), dy.numel(), float(p), key, true);
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::adamw_step(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, const AdamWArgs& a) {
  dispatch_float(w.dtype(), "adamw_step", [&](auto zero) {
    using T = decltype(zero);
    adamw_kernel<<<blocks_for(w.numel()), 256>>>(w.data<T>(), g.data<T>(), m.data<T>(), v.data<T>(), w.numel(), a);
  });
  MT_CUDA_LAUNCHED();
}

}  // namespace mt::cuda
