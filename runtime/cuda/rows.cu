// Row-wise kernels, one block of 256 threads per row, f64 accumulation:
//   layernorm  x [N,C], w, b [C] -> y, mean [N], rstd [N]; backward dx (+=) per row, and dw, db
//              (+=) per column by a second kernel walking the rows in order (deterministic)
//   softmax    x [N,C] -> y;  backward dx += y (dy - sum(dy y))
//   cross-entropy logits [N,V] (a vocabulary shard: runtime/backend.h) -> lse, target logits;
//              backward dlogits += dloss (softmax - onehot)
//   distillation scaled_logsumexp, kd_cross_term, kd_backward (runtime/cpu/distillation.cpp)
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device_math.cuh"
#include "runtime/dispatch.h"

namespace mt::cuda {
namespace {

constexpr int kThreads = 256;

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

// lse of scale * row
template <class T>
__device__ double row_lse(const T* row, int64_t v, double scale, double* scratch) {
  double m = -CUDART_INF;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) m = max(m, scale * double(row[j]));
  m = block_max(m, scratch);
  double s = 0;
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x) s += exp(scale * double(row[j]) - m);
  return m + log(block_sum(s, scratch));
}

__device__ int64_t shard_column(int64_t id, int64_t v, VocabShard shard) {
  int64_t r = id - shard.start;
  return r >= 0 && r < v ? r : -1;
}

template <class T, class I>
__global__ void ce_forward_kernel(const T* logits, const I* targets, int64_t v, VocabShard shard, T* lse,
                                  T* target_logits) {
  __shared__ double scratch[32];
  const T* row = logits + int64_t(blockIdx.x) * v;
  double l = row_lse(row, v, 1.0, scratch);
  if (threadIdx.x == 0) {
    lse[blockIdx.x] = T(l);
    int64_t col = shard_column(int64_t(targets[blockIdx.x]), v, shard);
    target_logits[blockIdx.x] = col >= 0 ? row[col] : T(0);
  }
}

template <class T, class I>
__global__ void ce_backward_kernel(const T* logits, const I* targets, int64_t v, VocabShard shard, const T* lse,
                                   const T* dlosses, T* dlogits) {
  double g = double(dlosses[blockIdx.x]);
  if (g == 0.0) return;
  int64_t base = int64_t(blockIdx.x) * v, col = shard_column(int64_t(targets[blockIdx.x]), v, shard);
  double l = double(lse[blockIdx.x]);
  for (int64_t j = threadIdx.x; j < v; j += blockDim.x)
    dlogits[base + j] += T(g * (exp(double(logits[base + j]) - l) - (j == col ? 1.0 : 0.0)));
}

template <class T>
__global__ void scaled_lse_kernel(const T* x, int64_t v, double scale, T* lse) {
  __shared__ double scratch[32];
  double l = row_lse(x + int64_t(blockIdx.x) * v, v, scale, scratch);
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

unsigned rows(int64_t n) {
  return unsigned(std::max<int64_t>(n, 0));
}

}  // namespace

void CudaBackend::layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y,
                                    Tensor& mean, Tensor& rstd) {
  int64_t c = w.numel(), n = x.numel() / std::max<int64_t>(c, 1);
  if (n == 0) return;
  dispatch_float(x.dtype(), "layernorm", [&](auto zero) {
    using T = decltype(zero);
    layernorm_forward_kernel<<<rows(n), kThreads>>>(x.data<T>(), w.data<T>(), b.data<T>(), eps, c, y.data<T>(),
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
      layernorm_dx_kernel<<<rows(n), kThreads>>>(dy.data<T>(), x.data<T>(), w.data<T>(), mean.data<T>(), rstd.data<T>(),
                                                 c, dx->data<T>());
    if (dw || db)
      layernorm_dwdb_kernel<<<blocks_for(c), kThreads>>>(dy.data<T>(), x.data<T>(), mean.data<T>(), rstd.data<T>(), n,
                                                         c, dw ? dw->data<T>() : nullptr, db ? db->data<T>() : nullptr);
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::softmax_forward(const Tensor& x, Tensor& y) {
  int64_t c = x.size(-1), n = x.numel() / std::max<int64_t>(c, 1);
  if (n == 0) return;
  dispatch_float(x.dtype(), "softmax", [&](auto zero) {
    using T = decltype(zero);
    softmax_kernel<<<rows(n), kThreads>>>(x.data<T>(), c, y.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  int64_t c = y.size(-1), n = y.numel() / std::max<int64_t>(c, 1);
  if (n == 0) return;
  dispatch_float(y.dtype(), "softmax_backward", [&](auto zero) {
    using T = decltype(zero);
    softmax_backward_kernel<<<rows(n), kThreads>>>(y.data<T>(), dy.data<T>(), c, dx.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::cross_entropy_forward(const Tensor& logits, const Tensor& targets, const VocabShard& shard,
                                        Tensor& lse, Tensor& target_logits) {
  int64_t n = logits.size(0), v = logits.size(1);
  if (n == 0) return;
  dispatch_float_and_index(logits.dtype(), targets.dtype(), "cross_entropy", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    check_ids<I>(targets, shard.total > 0 ? shard.total : v, "cross_entropy");
    ce_forward_kernel<<<rows(n), kThreads>>>(logits.data<T>(), targets.data<I>(), v, shard, lse.data<T>(),
                                             target_logits.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::cross_entropy_backward(const Tensor& logits, const Tensor& targets, const VocabShard& shard,
                                         const Tensor& lse, const Tensor& dlosses, Tensor& dlogits) {
  int64_t n = logits.size(0), v = logits.size(1);
  if (n == 0) return;
  dispatch_float_and_index(logits.dtype(), targets.dtype(), "cross_entropy_backward", [&](auto zero, auto izero) {
    using T = decltype(zero);
    using I = decltype(izero);
    check_ids<I>(targets, shard.total > 0 ? shard.total : v, "cross_entropy_backward");
    ce_backward_kernel<<<rows(n), kThreads>>>(logits.data<T>(), targets.data<I>(), v, shard, lse.data<T>(),
                                              dlosses.data<T>(), dlogits.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::scaled_logsumexp(const Tensor& x, double scale, Tensor& lse) {
  int64_t n = x.size(0), v = x.size(1);
  if (n == 0) return;
  dispatch_float(x.dtype(), "scaled_logsumexp", [&](auto zero) {
    using T = decltype(zero);
    scaled_lse_kernel<<<rows(n), kThreads>>>(x.data<T>(), v, scale, lse.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::kd_cross_term(const Tensor& a, const Tensor& b, double scale, const Tensor& lse_b, Tensor& out) {
  int64_t n = a.size(0), v = a.size(1);
  if (n == 0) return;
  dispatch_float(a.dtype(), "kd_cross_term", [&](auto zero) {
    using T = decltype(zero);
    kd_cross_kernel<<<rows(n), kThreads>>>(a.data<T>(), b.data<T>(), v, scale, lse_b.data<T>(), out.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::kd_backward(const Tensor& a, const Tensor& b, double scale, const Tensor& lse_a, const Tensor& lse_b,
                              const Tensor& dkl, Tensor& da) {
  int64_t n = a.size(0), v = a.size(1);
  if (n == 0) return;
  dispatch_float(a.dtype(), "kd_backward", [&](auto zero) {
    using T = decltype(zero);
    kd_backward_kernel<<<rows(n), kThreads>>>(a.data<T>(), b.data<T>(), v, scale, lse_a.data<T>(), lse_b.data<T>(),
                                              dkl.data<T>(), da.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

}  // namespace mt::cuda
