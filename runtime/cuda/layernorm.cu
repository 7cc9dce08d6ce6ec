// LayerNorm over the last dimension (runtime/cpu/layernorm.cpp), f64 accumulation.
//   forward:  x [N,C], w [C], b [C] -> y [N,C]; mean [N], rstd [N] (one block per row)
//             xhat = (x - mean) * rstd,  rstd = 1/sqrt(var + eps) (biased var),  y = xhat*w + b
//   backward: dy [N,C] -> dx [N,C], dw [C], db [C] (each accumulated, each optional)
//             dx += rstd * (g - mean_c(g) - xhat * mean_c(g*xhat)), g = dy*w: one block per row;
//             dw += sum_n dy*xhat, db += sum_n dy: one thread per column walking the rows in
//             order (deterministic, no atomics)
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device_math.cuh"
#include "runtime/dispatch.h"

namespace mt::cuda {
namespace {

template <class T>
__global__ void layernorm_forward_kernel(const T* x, const T* w, const T* b, double eps, int64_t c, T* y, T* mean,
                                         T* rstd) {
  __shared__ double scratch[32];
  const T* row = x + int64_t(blockIdx.x) * c;
  double s = 0;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) s += double(row[j]);
  double mu = block_sum(s, scratch) / double(c);
  double v = 0;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) v += (double(row[j]) - mu) * (double(row[j]) - mu);
  double r = 1.0 / sqrt(block_sum(v, scratch) / double(c) + eps);
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
    y[int64_t(blockIdx.x) * c + j] = T((double(row[j]) - mu) * r * double(w[j]) + double(b[j]));
  if (threadIdx.x == 0) {
    mean[blockIdx.x] = T(mu);
    rstd[blockIdx.x] = T(r);
  }
}

// dx += rstd (g - mean(g) - xhat mean(g xhat)), g = dy w
template <class T>
__global__ void layernorm_dx_kernel(const T* dy, const T* x, const T* w, const T* mean, const T* rstd, int64_t c,
                                    T* dx) {
  __shared__ double scratch[32];
  int64_t base = int64_t(blockIdx.x) * c;
  double mu = double(mean[blockIdx.x]), r = double(rstd[blockIdx.x]), sg = 0, sgx = 0;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    double g = double(dy[base + j]) * double(w[j]), xh = (double(x[base + j]) - mu) * r;
    sg += g;
    sgx += g * xh;
  }
  double mg = block_sum(sg, scratch) / double(c);
  double mgx = block_sum(sgx, scratch) / double(c);
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    double g = double(dy[base + j]) * double(w[j]), xh = (double(x[base + j]) - mu) * r;
    dx[base + j] += T(r * (g - mg - xh * mgx));
  }
}

// dw[j] += sum_n dy xhat, db[j] += sum_n dy: one thread per column
template <class T>
__global__ void layernorm_dwdb_kernel(const T* dy, const T* x, const T* mean, const T* rstd, int64_t n, int64_t c,
                                      T* dw, T* db) {
  int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= c) return;
  double sw = 0, sb = 0;
  for (int64_t i = 0; i < n; ++i) {
    double g = double(dy[i * c + j]);
    sw += g * (double(x[i * c + j]) - double(mean[i])) * double(rstd[i]);
    sb += g;
  }
  if (dw) dw[j] += T(sw);
  if (db) db[j] += T(sb);
}

}  // namespace

void CudaBackend::layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y,
                                    Tensor& mean, Tensor& rstd) {
  int64_t c = w.numel(), n = x.numel() / std::max<int64_t>(c, 1);
  if (n == 0) return;
  dispatch_float(x.dtype(), "layernorm", [&](auto zero) {
    using T = decltype(zero);
    layernorm_forward_kernel<<<row_blocks(n), kRowThreads>>>(x.data<T>(), w.data<T>(), b.data<T>(), eps, c, y.data<T>(),
                                                             mean.data<T>(), rstd.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,
                                     const Tensor& rstd, Tensor* dx, Tensor* dw, Tensor* db) {
  int64_t c = w.numel(), n = x.numel() / std::max<int64_t>(c, 1);
  if (n == 0) return;
  dispatch_float(x.dtype(), "layernorm_backward", [&](auto zero) {
    using T = decltype(zero);
    if (dx)
      layernorm_dx_kernel<<<row_blocks(n), kRowThreads>>>(dy.data<T>(), x.data<T>(), w.data<T>(), mean.data<T>(),
                                                          rstd.data<T>(), c, dx->data<T>());
    if (dw || db)
      layernorm_dwdb_kernel<<<blocks_for(c), kRowThreads>>>(dy.data<T>(), x.data<T>(), mean.data<T>(), rstd.data<T>(),
                                                            n, c, dw ? dw->data<T>() : nullptr,
                                                            db ? db->data<T>() : nullptr);
  });
  MT_CUDA_LAUNCHED();
}

}  // namespace mt::cuda
