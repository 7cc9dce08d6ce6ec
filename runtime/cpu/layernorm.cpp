// LayerNorm over the last dimension.
//   forward:  x [N,C], w [C], b [C] -> y [N,C]; mean [N], rstd [N]
//             xhat = (x - mean) * rstd,  rstd = 1/sqrt(var + eps) (biased var),  y = xhat*w + b
//   backward: dy [N,C] -> dx [N,C], dw [C], db [C] (each accumulated, each optional)
//             g = dy*w;  dx += rstd * (g - mean_c(g) - xhat * mean_c(g*xhat))
//             dw += sum_n dy*xhat;  db += sum_n dy
#include <cmath>

#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/vec_math.h"
#include "runtime/dispatch.h"

namespace mt::cpu {

void CpuBackend::layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y,
                                   Tensor& mean, Tensor& rstd) {
  dispatch_float(x.dtype(), "layernorm", [&](auto zero) {
    using T = decltype(zero);
    int64_t n = x.size(0), c = x.size(1);
    const T *px = x.data<T>(), *pw = w.data<T>(), *pb = b.data<T>();
    T *py = y.data<T>(), *pm = mean.data<T>(), *pr = rstd.data<T>();
    parallel_for(n, 4 * c, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        const T* row = px + i * c;
        T tm = T(lane_sum<T>(c, [&](int64_t j) { return row[j]; }) / double(c));
        double var = lane_sum<T>(c, [&](int64_t j) { return (row[j] - tm) * (row[j] - tm); }) / double(c);
        T tr = T(1.0 / std::sqrt(var + eps));
        T* out = py + i * c;
        for (int64_t j = 0; j < c; ++j) out[j] = (row[j] - tm) * tr * pw[j] + pb[j];
        pm[i] = tm;
        pr[i] = tr;
      }
    });
  });
}

void CpuBackend::layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,
                                    const Tensor& rstd, Tensor* dx, Tensor* dw, Tensor* db) {
  dispatch_float(x.dtype(), "layernorm_backward", [&](auto zero) {
    using T = decltype(zero);
    int64_t n = x.size(0), c = x.size(1);
    const T *pdy = dy.data<T>(), *px = x.data<T>(), *pw = w.data<T>();
    const T *pm = mean.data<T>(), *pr = rstd.data<T>();
    if (dx) {
      T* pdx = dx->data<T>();
      parallel_for(n, 4 * c, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) {
          const T *row = px + i * c, *g = pdy + i * c;
          T mu = pm[i], r = pr[i];
          T mg = T(lane_sum<T>(c, [&](int64_t j) { return g[j] * pw[j]; }) / double(c));
          T mgx = T(lane_sum<T>(c, [&](int64_t j) { return g[j] * pw[j] * ((row[j] - mu) * r); }) / double(c));
          T* out = pdx + i * c;
          for (int64_t j = 0; j < c; ++j) {
            T xhat = (row[j] - mu) * r;
            out[j] += r * (g[j] * pw[j] - mg - xhat * mgx);
          }
        }
      });
    }
    if (dw || db) {
      // Columns 0..c-1 hold sum(dy*xhat), columns c..2c-1 hold sum(dy).
      std::vector<double> sums = blocked_column_sums(n, 2 * c, [&](int64_t i, double* acc) {
        const T *row = px + i * c, *g = pdy + i * c;
        T mu = pm[i], r = pr[i];
        for (int64_t j = 0; j < c; ++j) {
          acc[j] += double(g[j] * ((row[j] - mu) * r));
          acc[c + j] += double(g[j]);
        }
      });
      if (dw) {
        T* p = dw->data<T>();
        for (int64_t j = 0; j < c; ++j) p[j] += T(sums[j]);
      }
      if (db) {
        T* p = db->data<T>();
        for (int64_t j = 0; j < c; ++j) p[j] += T(sums[c + j]);
      }
    }
  });
}

}  // namespace mt::cpu
