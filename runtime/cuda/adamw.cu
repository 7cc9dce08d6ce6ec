// AdamW, one thread per element of one parameter tensor (w, g, m, v: same shape); the update
// formula is runtime/adamw_math.h's, shared with runtime/cpu/adamw.cpp:
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  w -= lr (m/c1 / (sqrt(v/c2) + eps) + wd w)
#include "runtime/adamw_math.h"
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/dispatch.h"

namespace mt::cuda {
namespace {

template <class T>
__global__ void adamw_kernel(T* w, const T* g, T* m, T* v, int64_t n, AdamWScalars<T> s) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) adamw_update(w[i], g[i], m[i], v[i], s);
}

}  // namespace

void CudaBackend::adamw_step(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, const AdamWArgs& a) {
  dispatch_float(w.dtype(), "adamw_step", [&](auto zero) {
    using T = decltype(zero);
    adamw_kernel<<<blocks_for(w.numel()), 256>>>(w.data<T>(), g.data<T>(), m.data<T>(), v.data<T>(), w.numel(),
                                                 AdamWScalars<T>(a));
  });
  MT_CUDA_LAUNCHED();
}

}  // namespace mt::cuda
