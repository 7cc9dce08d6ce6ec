// Knowledge-distillation kernels (runtime/cpu/distillation.cpp: the math), per row n of student
// logits a [N,V] and teacher logits b [N,V] at scale s = 1/temperature; one block per row, f64
// accumulation:
//   scaled_logsumexp:  lse[n] = log sum_v exp(s x[n,v])
//   kd_cross_term:     out[n] = sum_v exp(s b[n,v] - lse_b[n]) * s (b[n,v] - a[n,v])
//   kd_backward:       da[n,v] += dkl[n] * s * (exp(s a - lse_a) - exp(s b - lse_b))
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device_math.cuh"
#include "runtime/dispatch.h"

namespace mt::cuda {
namespace {

template <class T>
__global__ void scaled_lse_kernel(const T* x, int64_t v, double scale, T* lse) {
  __shared__ double scratch[32];
  double l = row_logsumexp(x + int64_t(blockIdx.x) * v, v, scale, scratch);
  if (threadIdx.x == 0) lse[blockIdx.x] = T(l);
}

template <class T>
__global__ void kd_cross_kernel(const T* a, const T* b, int64_t v, double s, const T* lse_b, T* out) {
  __shared__ double scratch[32];
  int64_t base = int64_t(blockIdx.x) * v;
  double lb = double(lse_b[blockIdx.x]), acc = 0;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) {
    double bj = double(b[base + j]);
    acc += exp(s * bj - lb) * s * (bj - double(a[base + j]));
  }
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = T(acc);
}

template <class T>
__global__ void kd_backward_kernel(const T* a, const T* b, int64_t v, double s, const T* lse_a, const T* lse_b,
                                   const T* dkl, T* da) {
  double g = double(dkl[blockIdx.x]) * s;
  if (g == 0.0) return;
  int64_t base = int64_t(blockIdx.x) * v;
  double la = double(lse_a[blockIdx.x]), lb = double(lse_b[blockIdx.x]);
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x)
    da[base + j] += T(g * (exp(s * double(a[base + j]) - la) - exp(s * double(b[base + j]) - lb)));
}

}  // namespace

void CudaBackend::scaled_logsumexp(const Tensor& x, double scale, Tensor& lse) {
  int64_t n = x.size(0), v = x.size(1);
  if (n == 0) return;
  dispatch_float(x.dtype(), "scaled_logsumexp", [&](auto zero) {
    using T = decltype(zero);
    scaled_lse_kernel<<<row_blocks(n), kRowThreads>>>(x.data<T>(), v, scale, lse.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::kd_cross_term(const Tensor& a, const Tensor& b, double scale, const Tensor& lse_b, Tensor& out) {
  int64_t n = a.size(0), v = a.size(1);
  if (n == 0) return;
  dispatch_float(a.dtype(), "kd_cross_term", [&](auto zero) {
    using T = decltype(zero);
    kd_cross_kernel<<<row_blocks(n), kRowThreads>>>(a.data<T>(), b.data<T>(), v, scale, lse_b.data<T>(), out.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::kd_backward(const Tensor& a, const Tensor& b, double scale, const Tensor& lse_a, const Tensor& lse_b,
                              const Tensor& dkl, Tensor& da) {
  int64_t n = a.size(0), v = a.size(1);
  if (n == 0) return;
  dispatch_float(a.dtype(), "kd_backward", [&](auto zero) {
    using T = decltype(zero);
    kd_backward_kernel<<<row_blocks(n), kRowThreads>>>(a.data<T>(), b.data<T>(), v, scale, lse_a.data<T>(),
                                                       lse_b.data<T>(), dkl.data<T>(), da.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

}  // namespace mt::cuda
