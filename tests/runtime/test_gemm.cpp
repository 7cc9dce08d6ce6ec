// GEMM against Eigen: all transpose combinations, batched (strided and broadcast),
// f32 and f64, edge sizes; alpha/beta; errors.
#include <Eigen/Dense>
#include <catch2/catch.hpp>
#include <cmath>

#include "runtime/cpu/gemm_bf16.h"
#include "runtime/ops.h"
#include "test_util.h"

using namespace mt;
using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace {
Mat as_mat(const Tensor& t, int64_t rows, int64_t cols, int64_t offset = 0) {
  std::vector<double> v = t.to_double_vector();
  Mat m(rows, cols);
  for (int64_t i = 0; i < rows * cols; ++i) m.data()[i] = v[offset + i];
  return m;
}
}  // namespace

TEST_CASE("matmul matches Eigen for every transpose combination", "[runtime][gemm]") {
  for (DType dt : {DType::F32, DType::F64}) {
    double tol = dt == DType::F32 ? 1e-4 : 1e-12;
    for (auto [m, n, k] : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {5, 7, 3}, {17, 33, 65}, {64, 48, 1}}) {
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          DYNAMIC_SECTION(dtype_name(dt) << " m" << m << " n" << n << " k" << k << " ta" << ta << " tb" << tb) {
            Tensor a = testutil::random({ta ? k : m, ta ? m : k}, dt, 1);
            Tensor b = testutil::random({tb ? n : k, tb ? k : n}, dt, 2);
            Tensor c = testutil::random({m, n}, dt, 3);
            Mat ref = 0.5 * (ta ? Mat(as_mat(a, k, m).transpose()) : as_mat(a, m, k)) *
                          (tb ? Mat(as_mat(b, n, k).transpose()) : as_mat(b, k, n)) +
                      2.0 * as_mat(c, m, n);
            ops::matmul(a, ta, b, tb, c, 0.5, 2.0);
            REQUIRE(testutil::max_abs_diff(as_mat(c, m, n), ref) < tol * (1 + k));
          }
        }
    }
  }
}

TEST_CASE("batched matmul with strided batches and a shared 2-D operand", "[runtime][gemm]") {
  DType dt = DType::F64;
  int64_t batch = 3, m = 4, n = 5, k = 6;
  Tensor a = testutil::random({batch, m, k}, dt, 4);
  Tensor w = testutil::random({n, k}, dt, 5);  // shared, transposed
  Tensor c = ops::matmul(a, false, w, true);
  REQUIRE(c.shape() == Shape{batch, m, n});
  for (int64_t i = 0; i < batch; ++i) {
    Mat ref = as_mat(a, m, k, i * m * k) * as_mat(w, n, k).transpose();
    REQUIRE(testutil::max_abs_diff(as_mat(c, m, n, i * m * n), ref) < 1e-12);
  }
}

TEST_CASE("a GEMM with K = 0 scales C by beta", "[runtime][gemm]") {
  DType dt = DType::F32;
  // K = 0: C = beta * C.
  Tensor a0 = Tensor::empty({2, 0}, dt), b0 = Tensor::empty({0, 3}, dt), c0 = Tensor::full({2, 3}, 4.0, dt);
  ops::matmul(a0, false, b0, false, c0, 1.0, 0.5);
  REQUIRE(c0.to_double_vector()[5] == 2.0);
}

TEST_CASE("matmul errors name the op and the shapes and dtypes", "[runtime][gemm][errors]") {
  Tensor a = Tensor::zeros({2, 3}, DType::F32), b = Tensor::zeros({4, 5}, DType::F32);
  Tensor c = Tensor::zeros({2, 5}, DType::F32);
  REQUIRE_THROWS_WITH(ops::matmul(a, false, b, false, c),
                      Catch::Contains("matmul") && Catch::Contains("inner dimensions") &&
                          Catch::Contains("a f32[2,3]") && Catch::Contains("b f32[4,5]"));
  Tensor d = Tensor::zeros({3, 5}, DType::F64);
  REQUIRE_THROWS_WITH(ops::matmul(a, false, d, false, c), Catch::Contains("one dtype") && Catch::Contains("f64[3,5]"));
  Tensor i = Tensor::zeros({3, 5}, DType::I32);
  REQUIRE_THROWS_WITH(ops::matmul(a, false, i, false, c), Catch::Contains("matmul"));
}

// ops::matmul_bias (a linear layer's forward: oneDNN adds the bias in its GEMM on the CPU where
// built with it, f32 and bf16 operands; the composed path (bias rows, then beta 1) for f64 and
// without oneDNN) against Eigen in f64: every transpose, an edge K, both CPU paths, the same bits
// when run twice. bf16 also off its matrix-unit path, and f16: widened, then f32's way.
TEST_CASE("matmul_bias equals the product plus the bias in every row", "[runtime][gemm]") {
  struct Shape3 {
    int64_t m, n, k;
  };
  const cpu::Bf16GemmPath chosen = cpu::bf16_gemm_path();
  struct Case {
    DType dt;
    cpu::Bf16GemmPath bf16_path;
  };
  for (Case cs : {Case{DType::F32, chosen}, Case{DType::F64, chosen}, Case{DType::BF16, chosen},
                  Case{DType::BF16, cpu::Bf16GemmPath::Widened}, Case{DType::F16, chosen}})
    for (bool onednn : {true, false})
      for (Shape3 s : {Shape3{37, 19, 130}, Shape3{64, 48, 256}, Shape3{5, 7, 1}, Shape3{3, 4, 0}})
        for (bool ta : {false, true})
          for (bool tb : {false, true}) {
            cpu::set_f32_gemm_bias_onednn(onednn);
            cpu::set_bf16_gemm_path(cs.bf16_path);
            DType dt = cs.dt;
            DType out = dt == DType::F64 ? DType::F64 : DType::F32;
            Tensor a = testutil::random({ta ? s.k : s.m, ta ? s.m : s.k}, DType::F32, 1).to(dt);
            Tensor b = testutil::random({tb ? s.n : s.k, tb ? s.k : s.n}, DType::F32, 2).to(dt);
            Tensor bias = testutil::random({s.n}, out, 3);
            Tensor c = Tensor::full({s.m, s.n}, std::nan(""), out), again = c.clone();
            ops::matmul_bias(a, ta, b, tb, bias, c);
            ops::matmul_bias(a, ta, b, tb, bias, again);
            INFO(dtype_name(dt) << (cs.bf16_path == cpu::Bf16GemmPath::Widened ? " (bf16 widened)" : "")
                                << (onednn ? " f32 oneDNN" : " f32 composed") << " " << s.m << "x" << s.n << "x" << s.k
                                << " ta" << ta << " tb" << tb);
            REQUIRE(again.to_double_vector() == c.to_double_vector());
            Mat ma = as_mat(a, a.size(0), a.size(1)), mb = as_mat(b, b.size(0), b.size(1));
            Mat want = (ta ? Mat(ma.transpose()) : ma) * (tb ? Mat(mb.transpose()) : mb);
            Mat bound = (ta ? Mat(ma.transpose()) : ma).cwiseAbs() * (tb ? Mat(mb.transpose()) : mb).cwiseAbs();
            std::vector<double> got = c.to_double_vector(), vb = bias.to_double_vector();
            double eps = out == DType::F64 ? std::ldexp(1.0, -52) : std::ldexp(1.0, -23);
            for (int64_t i = 0; i < s.m; ++i)
              for (int64_t j = 0; j < s.n; ++j) {
                double w = want(i, j) + vb[size_t(j)];
                REQUIRE(std::fabs(got[size_t(i * s.n + j)] - w) <=
                        double(s.k + 2) * eps * (bound(i, j) + std::fabs(vb[size_t(j)])));
              }
          }
  cpu::set_f32_gemm_bias_onednn(true);
  cpu::set_bf16_gemm_path(chosen);
}

TEST_CASE("matmul_bias errors name the bias", "[runtime][gemm][errors]") {
  Tensor a = Tensor::zeros({2, 3}, DType::F32), w = Tensor::zeros({5, 3}, DType::F32);
  Tensor c = Tensor::zeros({2, 5}, DType::F32);
  REQUIRE_THROWS_WITH(
      ops::matmul_bias(a, false, w, true, Tensor::zeros({4}, DType::F32), c),
      Catch::Contains("matmul_bias") && Catch::Contains("bias [N] = [5]") && Catch::Contains("bias f32[4]"));
  REQUIRE_THROWS_WITH(ops::matmul_bias(a, false, w, true, Tensor::zeros({5}, DType::F64), c),
                      Catch::Contains("bias f64[5]"));
}

// A large C with beta 0 is filled by the backend and then added to (OpenBLAS's own beta pass is
// slower, runtime/cpu/gemm.cpp): whatever C held (NaN here) never reaches the result, which equals
// the products added to zeros (beta 1) and Eigen.
TEST_CASE("a large C with beta 0 ignores what it held", "[runtime][gemm]") {
  int64_t m = 1024, n = 1040, k = 24;  // m n >= 2^20 elements
  for (bool tb : {false, true}) {
    Tensor a = testutil::random({m, k}, DType::F32, 5),
           b = testutil::random(tb ? Shape{n, k} : Shape{k, n}, DType::F32, 6);
    Tensor c = Tensor::full({m, n}, std::nan(""), DType::F32), plain = Tensor::zeros({m, n}, DType::F32);
    ops::matmul(a, false, b, tb, c);
    ops::matmul(a, false, b, tb, plain, 1.0, 1.0);  // 0 + the products: what beta 0 means
    std::vector<double> got = c.to_double_vector();
    REQUIRE(got == plain.to_double_vector());
    Mat want = as_mat(a, m, k) * (tb ? Mat(as_mat(b, n, k).transpose()) : as_mat(b, k, n));
    for (int64_t i = 0; i < m * n; i += 997) REQUIRE(got[size_t(i)] == Approx(want.data()[i]).margin(1e-4));
  }
}
