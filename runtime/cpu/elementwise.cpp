// axpby, binary ops, whole-tensor reductions and row sums.
#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/parallel.h"
#include "runtime/cpu/vec_math.h"
#include "runtime/dispatch.h"

namespace mt::cpu {
namespace {
// max that propagates NaN (std::max drops it), so Max/AbsMax can detect non-finite values.
inline double nan_max(double a, double b) {
  return (std::isnan(a) || a >= b) ? a : b;
}
}  // namespace

// y[i] = alpha * x[i] + beta * y[i]; beta == 0 overwrites y (never reads it, so NaN-safe).
void CpuBackend::axpby(double alpha, const Tensor& x, double beta, Tensor& y) {
  dispatch_float(y.dtype(), "axpby", [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    T a = T(alpha), b = T(beta);
    parallel_for(y.numel(), 1, [&](int64_t s, int64_t e) {
      if (beta == 0.0) {
        for (int64_t i = s; i < e; ++i) py[i] = a * px[i];
      } else if (alpha == 0.0) {
        for (int64_t i = s; i < e; ++i) py[i] = b * py[i];
      } else {
        for (int64_t i = s; i < e; ++i) py[i] = a * px[i] + b * py[i];
      }
    });
  });
}

// out = a (op) b, elementwise, same shapes.
void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  dispatch_float(out.dtype(), "binary", [&](auto zero) {
    using T = decltype(zero);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.data<T>();
    parallel_for(out.numel(), 1, [&](int64_t s, int64_t e) {
      switch (op) {
        case BinaryOp::Add:
          for (int64_t i = s; i < e; ++i) po[i] = pa[i] + pb[i];
          break;
        case BinaryOp::Sub:
          for (int64_t i = s; i < e; ++i) po[i] = pa[i] - pb[i];
          break;
        case BinaryOp::Mul:
          for (int64_t i = s; i < e; ++i) po[i] = pa[i] * pb[i];
          break;
        case BinaryOp::Div:
          for (int64_t i = s; i < e; ++i) po[i] = pa[i] / pb[i];
          break;
      }
    });
  });
}

// out[0] = sum / sum of squares / max / max |.| of x, accumulated in f64 over fixed blocks.
void CpuBackend::reduce(ReduceOp op, const Tensor& x, Tensor& out) {
  dispatch_float(x.dtype(), "reduce", [&](auto zero) {
    using T = decltype(zero);
    const T* p = x.data<T>();
    int64_t n = x.numel();
    constexpr int64_t kBlock = 1 << 14;
    int64_t blocks = (n + kBlock - 1) / kBlock;
    bool is_max = op == ReduceOp::Max || op == ReduceOp::AbsMax;
    std::vector<double> part(size_t(std::max<int64_t>(blocks, 1)), is_max ? -INFINITY : 0.0);
    parallel_for(blocks, kBlock, [&](int64_t b0, int64_t b1) {
      for (int64_t blk = b0; blk < b1; ++blk) {
        const T* q = p + blk * kBlock;
        int64_t len = std::min(n, (blk + 1) * kBlock) - blk * kBlock;
        // Sums: kLanes independent f64 partial sums (vectorized; a fixed order, so deterministic).
        if (op == ReduceOp::Sum) {
          part[blk] = lane_sum<double>(len, [&](int64_t i) { return double(q[i]); });
        } else if (op == ReduceOp::SumSquares) {
          part[blk] = lane_sum<double>(len, [&](int64_t i) { return double(q[i]) * double(q[i]); });
        } else {
          double acc = part[blk];
          for (int64_t i = 0; i < len; ++i)
            acc = nan_max(acc, op == ReduceOp::AbsMax ? std::fabs(double(q[i])) : double(q[i]));
          part[blk] = acc;
        }
      }
    });
    double r = is_max ? -INFINITY : 0.0;
    for (double v : part) r = is_max ? nan_max(r, v) : r + v;
    out.data<T>()[0] = T(r);
  });
}

// x [N,C] -> out [C] = beta*out + sum over rows (e.g. a bias gradient).
void CpuBackend::sum_rows(const Tensor& x, double beta, Tensor& out) {
  dispatch_float(x.dtype(), "sum_rows", [&](auto zero) {
    using T = decltype(zero);
    int64_t n = x.size(0), c = x.size(1);
    const T* px = x.data<T>();
    std::vector<double> sums = blocked_column_sums(n, c, [&](int64_t i, double* acc) {
      const T* row = px + i * c;
      for (int64_t j = 0; j < c; ++j) acc[j] += double(row[j]);
    });
    T* po = out.data<T>();
    for (int64_t j = 0; j < c; ++j) po[j] = (beta == 0.0 ? T(0) : T(beta) * po[j]) + T(sums[j]);
  });
}

}  // namespace mt::cpu
