// Row gathers for the MoE layer (runtime/backend.h), one block of 128 threads per output row (the
// row's sources in a fixed order: deterministic, no atomics):
//   gather_rows   src [M,h], index [N] -> dst [N,h]
//   combine_rows  src [N,h], index [S,k] -> dst [S,h]
//   row_dots      a [*,h], b [*,h] -> out [P] or [P,m] (f64 block sums)
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device_math.cuh"
#include "runtime/dispatch.h"

namespace mt::cuda {
namespace {

constexpr int kThreads = 128;

// Weight i: 1 without weights, else w[i * stride + col].
template <class T>
__device__ T weight_at(const T* w, int64_t stride, int64_t col, int64_t i) {
  return w ? w[i * stride + col] : T(1);
}

template <class T>
__global__ void gather_rows_kernel(const T* src, const int64_t* index, const T* w, int64_t w_stride, int64_t col,
                                   bool accumulate, int64_t h, T* dst) {
  int64_t i = blockIdx.x, s = index ? index[i] : i;
  T wi = weight_at(w, w_stride, col, i);
  for (int64_t c = threadIdx.x; c < h; c += blockDim.x) {
    T v = accumulate ? dst[i * h + c] : T(0);
    if (s >= 0) v += wi * src[s * h + c];
    dst[i * h + c] = v;
  }
}

template <class T>
__global__ void combine_rows_kernel(const T* src, const int64_t* index, const T* w, bool accumulate, int64_t k,
                                    int64_t h, T* dst) {
  int64_t t = blockIdx.x;
  for (int64_t c = threadIdx.x; c < h; c += blockDim.x) {
    T v = accumulate ? dst[t * h + c] : T(0);
    for (int64_t j = 0; j < k; ++j) {
      int64_t r = index[t * k + j];
      if (r >= 0) v += weight_at(w, 1, 0, t * k + j) * src[r * h + c];
    }
    dst[t * h + c] = v;
  }
}

template <class T>
__global__ void row_dots_kernel(const T* a, const int64_t* ia, const T* b, const int64_t* ib, int64_t h, int64_t stride,
                                int64_t col, T* out) {
  __shared__ double scratch[32];
  int64_t p = blockIdx.x, i = ia ? ia[p] : p, j = ib ? ib[p] : p;
  if (i < 0 || j < 0) return;  // the whole block returns together
  double s = 0;
  for (int64_t c = threadIdx.x; c < h; c += blockDim.x) s += double(a[i * h + c]) * double(b[j * h + c]);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) out[p * stride + col] += T(s);
}

template <class T>
const T* optional_data(const Tensor* t) {
  return t ? t->data<T>() : nullptr;
}

const int64_t* optional_index(const Tensor* t) {
  return t ? t->data<int64_t>() : nullptr;
}

}  // namespace

void CudaBackend::gather_rows(const Tensor& src, const Tensor* index, const Tensor* weights, int64_t col,
                              bool accumulate, Tensor& dst) {
  int64_t n = dst.size(0), h = dst.size(1);
  if (n == 0) return;
  int64_t w_stride = weights && weights->dim() == 2 ? weights->size(1) : 1;
  if (!weights || weights->dim() != 2) col = 0;
  dispatch_float(dst.dtype(), "gather_rows", [&](auto zero) {
    using T = decltype(zero);
    gather_rows_kernel<T><<<unsigned(n), kThreads>>>(src.data<T>(), optional_index(index), optional_data<T>(weights),
                                                     w_stride, col, accumulate, h, dst.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::combine_rows(const Tensor& src, const Tensor& index, const Tensor* weights, bool accumulate,
                               Tensor& dst) {
  int64_t s = dst.size(0), h = dst.size(1);
  if (s == 0) return;
  dispatch_float(dst.dtype(), "combine_rows", [&](auto zero) {
    using T = decltype(zero);
    combine_rows_kernel<T><<<unsigned(s), kThreads>>>(src.data<T>(), index.data<int64_t>(), optional_data<T>(weights),
                                                      accumulate, index.size(1), h, dst.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

void CudaBackend::row_dots(const Tensor& a, const Tensor* ia, const Tensor& b, const Tensor* ib, int64_t col,
                           Tensor& out) {
  int64_t p = out.size(0), h = a.size(1), stride = out.dim() == 2 ? out.size(1) : 1;
  if (p == 0) return;
  if (out.dim() != 2) col = 0;
  dispatch_float(out.dtype(), "row_dots", [&](auto zero) {
    using T = decltype(zero);
    row_dots_kernel<T><<<unsigned(p), kThreads>>>(a.data<T>(), optional_index(ia), b.data<T>(), optional_index(ib), h,
                                                  stride, col, out.data<T>());
  });
  MT_CUDA_LAUNCHED();
}

}  // namespace mt::cuda
