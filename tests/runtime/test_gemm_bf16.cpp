// bf16 GEMMs on the CPU's matrix units through oneDNN (runtime/cpu/gemm_bf16.h) against the
// widened-to-f32 path and the f64 product of the rounded operands: every layout the model uses
// (transposes, strided and broadcast batches, alpha, beta), equal up to f32 summation order, and
// the same bits when run twice.
#include <catch2/catch.hpp>
#include <cmath>

#include "runtime/cpu/gemm_bf16.h"
#include "runtime/ops.h"
#include "test_util.h"

using namespace mt;
using cpu::Bf16GemmPath;

namespace {

// The paths this build can run (oneDNN only when built with it; on a CPU without bf16 units
// oneDNN emulates them, which tests the same layouts).
std::vector<Bf16GemmPath> paths() {
  std::vector<Bf16GemmPath> p = {Bf16GemmPath::Widened};
#if MOETRAIN_HAVE_DNNL
  p.push_back(Bf16GemmPath::OneDnn);
#endif
  return p;
}

// Restores the path chosen from the CPU when the test ends.
struct PathScope {
  Bf16GemmPath saved = cpu::bf16_gemm_path();
  ~PathScope() { cpu::set_bf16_gemm_path(saved); }
};

// |c - ref| against the f32 summation error bound of each entry: k * 2^-23 * sum_j |a_ij b_jk|.
void require_close(const Tensor& c, const Tensor& ref, const Tensor& abs_products, int64_t k) {
  std::vector<double> got = c.to_double_vector(), want = ref.to_double_vector(),
                      scale = abs_products.to_double_vector();
  size_t worst = 0;  // the entry furthest past its bound (one REQUIRE: outputs of 560k entries)
  double worst_excess = -INFINITY;
  for (size_t i = 0; i < got.size(); ++i) {
    double bound = double(k + 2) * std::ldexp(1.0, -23) * (scale[i] + std::fabs(want[i]));
    double excess = std::isnan(got[i]) ? INFINITY : std::fabs(got[i] - want[i]) - bound;
    if (excess > worst_excess) worst = i, worst_excess = excess;
  }
  INFO("entry " << worst << ": " << got[worst] << " vs " << want[worst] << ", past its bound by " << worst_excess);
  REQUIRE(worst_excess <= 0.0);
}

// c = alpha op(a) op(b) + beta c on `path` (a: batch x [m,k], b: [k,n] broadcast over the batch)
// against the f64 product of the rounded operands, for three (alpha, beta); the same bits twice.
// (half: the operands' type; f16 always widens.)
void check_against_f64(Bf16GemmPath path, int64_t m, int64_t n, int64_t k, bool ta, bool tb, int64_t batch,
                       DType half = DType::BF16) {
  cpu::set_bf16_gemm_path(path);
  Shape sa = {ta ? k : m, ta ? m : k}, sb = {tb ? n : k, tb ? k : n};
  if (batch > 1) sa.insert(sa.begin(), batch);  // b broadcast over the batch (a weight)
  Tensor a = testutil::random(sa, DType::F32, 21).to(half);
  Tensor b = testutil::random(sb, DType::F32, 22).to(half);
  Shape sc = {m, n};
  if (batch > 1) sc.insert(sc.begin(), batch);
  Tensor c0 = testutil::random(sc, DType::F32, 23);
  for (auto [alpha, beta] : {std::pair{1.0, 0.0}, std::pair{0.5, 1.0}, std::pair{-2.0, 0.25}}) {
    Tensor c = c0.clone(), ref = c0.to(DType::F64), abs = Tensor::zeros(sc, DType::F64);
    ops::matmul(a.to(DType::F64), ta, b.to(DType::F64), tb, ref, alpha, beta);
    Tensor aa = a.to(DType::F64), ab = b.to(DType::F64);
    for (Tensor* t : {&aa, &ab}) {
      std::vector<double> v = t->to_double_vector();
      for (double& x : v) x = std::fabs(x);
      *t = Tensor::from_vector(v, t->shape());
    }
    ops::matmul(aa, ta, ab, tb, abs, std::fabs(alpha), 0.0);
    ops::matmul(a, ta, b, tb, c, alpha, beta);
    require_close(c, ref, abs, k);
    Tensor again = c0.clone();  // deterministic for a fixed thread count
    ops::matmul(a, ta, b, tb, again, alpha, beta);
    REQUIRE(again.to_double_vector() == c.to_double_vector());
  }
}

const char* path_name(Bf16GemmPath path) {
  return path == Bf16GemmPath::OneDnn ? "onednn" : "widened";
}

}  // namespace

TEST_CASE("bf16 GEMM: oneDNN and the widened path equal the f64 product of the rounded operands",
          "[runtime][precision][gemm][bf16]") {
  PathScope scope;
  for (Bf16GemmPath path : paths())
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (int64_t batch : {1, 3})
          DYNAMIC_SECTION(path_name(path) << " ta" << ta << " tb" << tb << " batch " << batch) {
            check_against_f64(path, 37, 19, 130, ta, tb, batch);
          }
}

// From K = 16384 oneDNN's path packs b into the kernel's layout once per call (the logits'
// backward dx = dlogits wte, K = vocabulary); a copy, so the same bound holds.
TEST_CASE("bf16 GEMM: a long inner dimension (b packed first) equals the f64 product",
          "[runtime][precision][gemm][bf16]") {
  PathScope scope;
  for (Bf16GemmPath path : paths())
    for (bool ta : {false, true})
      for (bool tb : {false, true}) DYNAMIC_SECTION(path_name(path) << " ta" << ta << " tb" << tb) {
          check_against_f64(path, 9, 21, 20000, ta, tb, 1);
        }
}

TEST_CASE("bf16 GEMM: the two paths agree on the model's shapes", "[runtime][precision][gemm][bf16]") {
#if !MOETRAIN_HAVE_DNNL
  SUCCEED("built without oneDNN: one path");
  return;
#else
  PathScope scope;
  // [tokens, hidden] x [ffn, hidden]^T, its two backward GEMMs, and a K = 1 edge
  struct Case {
    int64_t m, n, k;
    bool ta, tb;
  };
  for (Case s : {Case{512, 256, 128, false, true}, Case{512, 128, 256, false, false}, Case{256, 128, 512, true, false},
                 Case{5, 7, 1, false, true}}) {
    Tensor a = testutil::random({s.ta ? s.k : s.m, s.ta ? s.m : s.k}, DType::F32, 31).to(DType::BF16);
    Tensor b = testutil::random({s.tb ? s.n : s.k, s.tb ? s.k : s.n}, DType::F32, 32).to(DType::BF16);
    Tensor widened = Tensor::zeros({s.m, s.n}, DType::F32), onednn = widened.clone();
    cpu::set_bf16_gemm_path(Bf16GemmPath::Widened);
    ops::matmul(a, s.ta, b, s.tb, widened);
    cpu::set_bf16_gemm_path(Bf16GemmPath::OneDnn);
    ops::matmul(a, s.ta, b, s.tb, onednn);
    REQUIRE(testutil::max_abs_diff(widened.to_double_vector(), onednn.to_double_vector()) <=
            1e-5 * std::sqrt(double(s.k)));
  }
#endif
}

TEST_CASE("bf16 GEMM: the reference call (the library directly) computes the plain product",
          "[runtime][precision][gemm][bf16]") {
  int64_t m = 33, n = 17, k = 64;
  Tensor a = testutil::random({m, k}, DType::F32, 41).to(DType::BF16);
  Tensor b = testutil::random({k, n}, DType::F32, 42).to(DType::BF16);
  Tensor c = Tensor::zeros({m, n}, DType::F32), want = Tensor::zeros({m, n}, DType::F32);
  std::function<void()> raw = cpu::raw_bf16_matmul(a, b, c);
#if MOETRAIN_HAVE_DNNL
  REQUIRE(raw);
  raw();
  ops::matmul(a.to(DType::F32), false, b.to(DType::F32), false, want);
  REQUIRE(testutil::max_abs_diff(c.to_double_vector(), want.to_double_vector()) <= 1e-5 * std::sqrt(double(k)));
#else
  REQUIRE(!raw);  // the bench then times ops::matmul's widened path
#endif
}

TEST_CASE("bf16 GEMM: more layouts than the primitive cache holds (a dropless MoE's row counts)",
          "[runtime][precision][gemm][bf16]") {
  // 1100 row counts (past the 1024 cached layouts), then the first ones again (evicted, made
  // anew): every product still equals the widened path's up to f32 summation order.
  PathScope scope;
  Tensor a = testutil::random({1100, 24}, DType::F32, 61).to(DType::BF16);
  Tensor b = testutil::random({24, 8}, DType::F32, 62).to(DType::BF16);
  auto product = [&](Bf16GemmPath path, int64_t m) {
    cpu::set_bf16_gemm_path(path);
    Tensor c = Tensor::empty({m, 8}, DType::F32);
    ops::matmul(a.narrow(0, m), false, b, false, c);
    return c.to_double_vector();
  };
  for (Bf16GemmPath path : paths()) {
    for (int64_t m = 1; m <= 1100; ++m) (void)product(path, m);
    for (int64_t m : {1, 2, 3, 517}) {
      std::vector<double> got = product(path, m), want = product(Bf16GemmPath::Widened, m);
      for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == Approx(want[i]).margin(1e-5));
    }
  }
}
