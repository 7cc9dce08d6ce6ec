// The MoE row gathers (runtime/ops.h: gather_rows, combine_rows, row_dots) against plain loops,
// f32 and f64, with -1 ("no row") entries, weights by vector and by column, identity indices,
// accumulation; and the index checks.
#include <catch2/catch.hpp>

#include "runtime/ops.h"
#include "test_util.h"

using namespace mt;

namespace {
Tensor ids(const std::vector<int64_t>& v, Shape shape) {
  return Tensor::from_vector(v, shape);
}
}  // namespace

TEST_CASE("gather_rows, combine_rows and row_dots equal plain loops", "[runtime][moe_rows]") {
  for (DType dt : {DType::F32, DType::F64}) {
    DYNAMIC_SECTION(dtype_name(dt)) {
      double tol = dt == DType::F32 ? 1e-5 : 1e-13;
      int64_t h = 37;
      Tensor src = testutil::random({5, h}, dt, 1), base = testutil::random({4, h}, dt, 2);
      Tensor w = testutil::random({4, 3}, dt, 3);
      Tensor index = ids({3, -1, 0, 3}, {4});
      std::vector<double> s = src.to_double_vector(), b = base.to_double_vector(), wv = w.to_double_vector();

      Tensor dst = base.clone();  // accumulate, weights column 2
      ops::gather_rows(src, &index, &w, 2, true, dst);
      std::vector<double> want = b;
      std::vector<int64_t> iv = {3, -1, 0, 3};
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t c = 0; c < h; ++c)
          if (iv[size_t(i)] >= 0) want[size_t(i * h + c)] += wv[size_t(i * 3 + 2)] * s[size_t(iv[size_t(i)] * h + c)];
      CHECK(testutil::max_abs_diff(dst.to_double_vector(), want) < tol);

      Tensor plain = Tensor::empty({4, h}, dt);  // overwrite, no weights, identity index
      ops::gather_rows(src, nullptr, nullptr, 0, false, plain);
      CHECK(testutil::max_abs_diff(plain.to_double_vector(), std::vector<double>(s.begin(), s.begin() + 4 * h)) == 0);

      Tensor pos = ids({0, 4, -1, 2, 1, -1, 3, 3}, {4, 2});  // combine, k = 2
      Tensor cw = testutil::random({4, 2}, dt, 4);
      std::vector<double> cwv = cw.to_double_vector();
      std::vector<int64_t> pv = {0, 4, -1, 2, 1, -1, 3, 3};
      Tensor y = base.clone();
      ops::combine_rows(src, pos, &cw, false, y);
      std::vector<double> ywant(size_t(4 * h), 0.0);
      for (int64_t t = 0; t < 4; ++t)
        for (int64_t j = 0; j < 2; ++j)
          if (pv[size_t(t * 2 + j)] >= 0)
            for (int64_t c = 0; c < h; ++c)
              ywant[size_t(t * h + c)] += cwv[size_t(t * 2 + j)] * s[size_t(pv[size_t(t * 2 + j)] * h + c)];
      CHECK(testutil::max_abs_diff(y.to_double_vector(), ywant) < tol);

      Tensor out = testutil::random({4, 3}, dt, 5);  // row_dots into column 1, accumulating
      std::vector<double> ov = out.to_double_vector();
      Tensor ia = ids({0, -1, 2, 3}, {4}), ib = ids({4, 1, -1, 0}, {4});
      ops::row_dots(base, &ia, src, &ib, 1, out);
      std::vector<int64_t> av = {0, -1, 2, 3}, bv = {4, 1, -1, 0};
      for (int64_t p = 0; p < 4; ++p) {
        if (av[size_t(p)] < 0 || bv[size_t(p)] < 0) continue;
        double dot = 0;
        for (int64_t c = 0; c < h; ++c) dot += b[size_t(av[size_t(p)] * h + c)] * s[size_t(bv[size_t(p)] * h + c)];
        ov[size_t(p * 3 + 1)] += dot;
      }
      CHECK(testutil::max_abs_diff(out.to_double_vector(), ov) < tol);
    }
  }
}

TEST_CASE("row gathers refuse bad indices with the entry named", "[runtime][moe_rows][errors]") {
  Tensor src = Tensor::zeros({3, 4}, DType::F32), dst = Tensor::zeros({2, 4}, DType::F32);
  Tensor bad = Tensor::from_vector(std::vector<int64_t>{0, 3}, {2});
  CHECK_THROWS_WITH(ops::gather_rows(src, &bad, nullptr, 0, false, dst), Catch::Contains("entry 1 is 3"));
  Tensor i32 = Tensor::from_vector(std::vector<int32_t>{0, 1}, {2});
  CHECK_THROWS_WITH(ops::gather_rows(src, &i32, nullptr, 0, false, dst), Catch::Contains("i64"));
  Tensor pos = Tensor::from_vector(std::vector<int64_t>{0, 1, 2}, {3, 1});
  CHECK_THROWS_WITH(ops::combine_rows(src, pos, nullptr, false, dst), Catch::Contains("index [S,k]"));
}
