// What every backend shares: grouped GEMM as one gemm per group (empty groups skipped).
#include "runtime/backend.h"

namespace mt {

void Backend::gemm_grouped(bool trans_a, bool trans_b, double alpha, const std::vector<Tensor>& a,
                           const std::vector<Tensor>& b, double beta, std::vector<Tensor>& c) {
  for (size_t i = 0; i < a.size(); ++i) {
    GemmDesc g;
    g.trans_a = trans_a;
    g.trans_b = trans_b;
    g.m = c[i].size(0);
    g.n = c[i].size(1);
    g.k = trans_a ? a[i].size(0) : a[i].size(1);
    g.stride_c = g.m * g.n;
    if (g.m == 0 || g.n == 0) continue;
    gemm(g, alpha, a[i], b[i], beta, c[i]);
  }
}

}  // namespace mt
