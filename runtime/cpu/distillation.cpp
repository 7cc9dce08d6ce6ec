// Knowledge-distillation kernels, per row n of student logits a [N,V] and teacher logits b [N,V]
// at temperature T (scale s = 1/T), with p = softmax(s b), q = softmax(s a):
//   scaled_logsumexp:  lse[n] = log sum_v exp(s x[n,v])
//   kd_cross_term:     out[n] = sum_v exp(s b[n,v] - lse_b[n]) * s (b[n,v] - a[n,v])   (= sum p (b-a)/T)
//                      so that KL(p || q)[n] = out[n] - lse_b[n] + lse_a[n]
//   kd_backward:       da[n,v] += dkl[n] * s * (exp(s a - lse_a) - exp(s b - lse_b))  (= s (q - p))
// With a vocabulary split over ranks, each runs on its columns: lse and out combine by all-reduce
// (nn/kd_loss.cpp); the backward needs the combined lse only. Rows with dkl[n] == 0 are skipped.
#include <cmath>

#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/vec_math.h"
#include "runtime/dispatch.h"

namespace mt::cpu {

void CpuBackend::scaled_logsumexp(const Tensor& x, double scale, Tensor& lse) {
  dispatch_float(x.dtype(), "scaled_logsumexp", [&](auto zero) {
    using T = decltype(zero);
    int64_t n = x.size(0), v = x.size(1);
    const T* px = x.data<T>();
    T* pl = lse.data<T>();
    T s = T(scale);
    parallel_for(n, 2 * v, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) {
        const T* row = px + i * v;
        T mx = s * lane_max(row, v);  // s > 0: the max of s x is s max x
        double sum = lane_sum<T>(v, [&](int64_t j) { return vexp(s * row[j] - mx); });
        pl[i] = mx + T(std::log(sum));
      }
    });
  });
}

void CpuBackend::kd_cross_term(const Tensor& a, const Tensor& b, double scale, const Tensor& lse_b, Tensor& out) {
  dispatch_float(a.dtype(), "kd_cross_term", [&](auto zero) {
    using T = decltype(zero);
    int64_t n = a.size(0), v = a.size(1);
    const T *pa = a.data<T>(), *pb = b.data<T>(), *pl = lse_b.data<T>();
    T* po = out.data<T>();
    T s = T(scale);
    parallel_for(n, 3 * v, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) {
        const T *ra = pa + i * v, *rb = pb + i * v;
        T l = pl[i];
        po[i] = T(lane_sum<T>(v, [&](int64_t j) { return vexp(s * rb[j] - l) * (s * (rb[j] - ra[j])); }));
      }
    });
  });
}

void CpuBackend::kd_backward(const Tensor& a, const Tensor& b, double scale, const Tensor& lse_a, const Tensor& lse_b,
                             const Tensor& dkl, Tensor& da) {
  dispatch_float(a.dtype(), "kd_backward", [&](auto zero) {
    using T = decltype(zero);
    int64_t n = a.size(0), v = a.size(1);
    const T *pa = a.data<T>(), *pb = b.data<T>(), *pla = lse_a.data<T>(), *plb = lse_b.data<T>(), *pd = dkl.data<T>();
    T* pg = da.data<T>();
    T s = T(scale);
    parallel_for(n, 4 * v, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) {
        T g = pd[i] * s;
        if (g == T(0)) continue;
        const T *ra = pa + i * v, *rb = pb + i * v;
        T* out = pg + i * v;
        T la = pla[i], lb = plb[i];
        for (int64_t j = 0; j < v; ++j) out[j] += g * (vexp(s * ra[j] - la) - vexp(s * rb[j] - lb));
      }
    });
  });
}

}  // namespace mt::cpu
