// Row gathers for the MoE layer (runtime/backend.h): each output row is computed by one thread
// from its sources in a fixed order, so results do not depend on the thread count.
//   gather_rows   src [M,h], index [N] -> dst [N,h]   (dispatch, combine's d rows, residual mixing)
//   combine_rows  src [N,h], index [S,k] -> dst [S,h] (combine, dispatch's d x)
//   row_dots      a [*,h], b [*,h] -> out [P] or [P,m] (combine's d weights, the mixing's d coefficients)
#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/parallel.h"
#include "runtime/dispatch.h"

namespace mt::cpu {
namespace {

// Row i's source under an optional index (nullptr: the identity).
inline int64_t source(const int64_t* index, int64_t i) {
  return index ? index[i] : i;
}

// Weight i of an optional weight tensor: [N] or [N, m] at column col.
template <class T>
struct RowWeights {
  const T* p = nullptr;
  int64_t stride = 1, col = 0;
  RowWeights(const Tensor* w, int64_t c) {
    if (!w) return;
    p = w->data<T>();
    stride = w->dim() == 2 ? w->size(1) : 1;
    col = w->dim() == 2 ? c : 0;
  }
  T operator[](int64_t i) const { return p ? p[i * stride + col] : T(1); }
};

}  // namespace

void CpuBackend::gather_rows(const Tensor& src, const Tensor* index, const Tensor* weights, int64_t col,
                             bool accumulate, Tensor& dst) {
  int64_t n = dst.size(0), h = dst.size(1);
  const int64_t* idx = index ? index->data<int64_t>() : nullptr;
  dispatch_float(dst.dtype(), "gather_rows", [&](auto zero) {
    using T = decltype(zero);
    const T* ps = src.data<T>();
    T* pd = dst.data<T>();
    RowWeights<T> w(weights, col);
    parallel_for(n, h, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        T* out = pd + i * h;
        int64_t s = source(idx, i);
        if (!accumulate)
          for (int64_t c = 0; c < h; ++c) out[c] = T(0);
        if (s < 0) continue;
        const T* in = ps + s * h;
        T wi = w[i];
        for (int64_t c = 0; c < h; ++c) out[c] += wi * in[c];
      }
    });
  });
}

void CpuBackend::combine_rows(const Tensor& src, const Tensor& index, const Tensor* weights, bool accumulate,
                              Tensor& dst) {
  int64_t s_count = dst.size(0), h = dst.size(1), k = index.size(1);
  const int64_t* idx = index.data<int64_t>();
  dispatch_float(dst.dtype(), "combine_rows", [&](auto zero) {
    using T = decltype(zero);
    const T* ps = src.data<T>();
    T* pd = dst.data<T>();
    Tensor flat = weights ? weights->reshape({weights->numel()}) : Tensor();  // w_{t,j} at t*k+j
    RowWeights<T> w(weights ? &flat : nullptr, 0);
    parallel_for(s_count, k * h, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        T* out = pd + t * h;
        if (!accumulate)
          for (int64_t c = 0; c < h; ++c) out[c] = T(0);
        for (int64_t j = 0; j < k; ++j) {
          int64_t r = idx[t * k + j];
          if (r < 0) continue;
          const T* in = ps + r * h;
          T wj = w[t * k + j];
          for (int64_t c = 0; c < h; ++c) out[c] += wj * in[c];
        }
      }
    });
  });
}

void CpuBackend::row_dots(const Tensor& a, const Tensor* ia, const Tensor& b, const Tensor* ib, int64_t col,
                          Tensor& out) {
  int64_t p_count = out.size(0), h = a.size(1), stride = out.dim() == 2 ? out.size(1) : 1;
  if (out.dim() != 2) col = 0;
  const int64_t* pa_idx = ia ? ia->data<int64_t>() : nullptr;
  const int64_t* pb_idx = ib ? ib->data<int64_t>() : nullptr;
  dispatch_float(out.dtype(), "row_dots", [&](auto zero) {
    using T = decltype(zero);
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* po = out.data<T>();
    parallel_for(p_count, h, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        int64_t i = source(pa_idx, p), j = source(pb_idx, p);
        if (i < 0 || j < 0) continue;
        double dot = 0;
        for (int64_t c = 0; c < h; ++c) dot += double(pa[i * h + c]) * double(pb[j * h + c]);
        po[p * stride + col] += T(dot);
      }
    });
  });
}

}  // namespace mt::cpu
