// The CPU attention kernel (runtime/cpu/attention.cpp) on its own micro-kernels, against a naive
// f64 loop: f32 forward and backward for head sizes 32, 64 and 128, sequences that are not a
// multiple of the 64-row block, more heads than threads, with and without dropout, on the AVX-512
// and the portable paths; bf16 operands (precision: bf16) against the f64 attention of the rounded
// q, k, v, on both bf16 paths (widened to f32, VDPBF16PS dot products); the same bits from run to
// run and for 1 or 2 threads; the micro-kernels' epilogues against plain passes over C.
#include <omp.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "runtime/cpu/attention_rows.h"
#include "runtime/cpu/attention_tile_gemm.h"
#include "runtime/dropout_mask.h"
#include "runtime/ops.h"
#include "test_util.h"

using namespace mt;
using cpu::attn::Bf16Path;

namespace {

struct Case {
  int64_t bsz, t_len, heads, d;
  double dropout = 0;
};

// out [B,T,C], lse [B,H,T] and dqkv [B,T,3C] as f64 vectors.
struct Result {
  std::vector<double> out, lse, dqkv;
};

// The f64 loops of the op's definition (runtime/ops.h) on qkv and dout given as f64 vectors.
Result reference(const Case& k, const std::vector<double>& qkv, const std::vector<double>& dout,
                 const AttentionDropout& dr) {
  int64_t t_len = k.t_len, c = k.heads * k.d, d = k.d;
  double scale = 1.0 / std::sqrt(double(d));
  Result r{std::vector<double>(size_t(k.bsz * t_len * c)), std::vector<double>(size_t(k.bsz * k.heads * t_len)),
           std::vector<double>(qkv.size())};
  for (int64_t b = 0; b < k.bsz; ++b)
    for (int64_t h = 0; h < k.heads; ++h) {
      auto at = [&](int64_t part, int64_t t, int64_t j) {
        return size_t((b * t_len + t) * 3 * c + part * c + h * d + j);
      };
      auto o_at = [&](int64_t t, int64_t j) { return size_t((b * t_len + t) * c + h * d + j); };
      uint64_t start = dr.mask_start(k.heads, b, h, t_len);
      std::vector<double> p(size_t(t_len * t_len)), mask(p.size());
      for (int64_t t = 0; t < t_len; ++t) {
        double mx = -INFINITY;
        for (int64_t s = 0; s <= t; ++s) {
          double dot = 0;
          for (int64_t j = 0; j < d; ++j) dot += qkv[at(0, t, j)] * qkv[at(1, s, j)];
          p[t * t_len + s] = dot * scale;
          mx = std::max(mx, dot * scale);
          mask[t * t_len + s] =
              dr.p > 0 ? dropout_keep_scale(dr.key, start + uint64_t(t * t_len + s), float(dr.p), 1.0 / (1.0 - dr.p))
                       : 1.0;
        }
        double sum = 0;
        for (int64_t s = 0; s <= t; ++s) sum += std::exp(p[t * t_len + s] - mx);
        r.lse[size_t((b * k.heads + h) * t_len + t)] = mx + std::log(sum);
        for (int64_t s = 0; s <= t; ++s) p[t * t_len + s] = std::exp(p[t * t_len + s] - mx) / sum;
        for (int64_t j = 0; j < d; ++j) {
          double o = 0;
          for (int64_t s = 0; s <= t; ++s) o += p[t * t_len + s] * mask[t * t_len + s] * qkv[at(2, s, j)];
          r.out[o_at(t, j)] = o;
        }
      }
      for (int64_t t = 0; t < t_len; ++t) {
        double delta = 0;
        for (int64_t j = 0; j < d; ++j) delta += dout[o_at(t, j)] * r.out[o_at(t, j)];
        for (int64_t s = 0; s <= t; ++s) {
          double pm = p[t * t_len + s] * mask[t * t_len + s], dp = 0;
          for (int64_t j = 0; j < d; ++j) {
            r.dqkv[at(2, s, j)] += pm * dout[o_at(t, j)];
            dp += dout[o_at(t, j)] * qkv[at(2, s, j)];
          }
          double ds = p[t * t_len + s] * (dp * mask[t * t_len + s] - delta) * scale;
          for (int64_t j = 0; j < d; ++j) {
            r.dqkv[at(0, t, j)] += ds * qkv[at(1, s, j)];
            r.dqkv[at(1, s, j)] += ds * qkv[at(0, t, j)];
          }
        }
      }
    }
  return r;
}

// The op on qkv (f32 or bf16), dout f32: out, lse, and dqkv accumulated onto zeros.
Result run_op(const Case& k, const Tensor& qkv, const Tensor& dout, const AttentionDropout& dr) {
  int64_t c = k.heads * k.d;
  Tensor out = Tensor::empty({k.bsz, k.t_len, c}, DType::F32),
         lse = Tensor::empty({k.bsz, k.heads, k.t_len}, DType::F32);
  Tensor dqkv = Tensor::zeros({k.bsz, k.t_len, 3 * c}, DType::F32);
  ops::attention_forward(qkv, k.heads, out, lse, dr);
  ops::attention_backward(dout, qkv, out, lse, k.heads, dqkv, dr);
  return {out.to_double_vector(), lse.to_double_vector(), dqkv.to_double_vector()};
}

// |got - want| <= tol * (1 + |want|), entry by entry; then the largest error relative to max |want|.
void require_close(const std::vector<double>& got, const std::vector<double>& want, double tol, const char* what) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double err = std::fabs(got[i] - want[i]) / (1.0 + std::fabs(want[i]));
    if (err > worst) worst = err, at = i;
  }
  INFO(what << ": worst entry " << at << ": " << got[at] << " vs " << want[at]);
  REQUIRE(worst <= tol);
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// Runs the portable micro-kernels (or those of the CPU) and a bf16 path, restoring the CPU's choice.
struct PathScope {
  explicit PathScope(bool portable, Bf16Path path = Bf16Path::Widened) {
    cpu::attn::force_portable_kernels(portable);
    cpu::attn::set_bf16_path(path);
  }
  ~PathScope() {
    cpu::attn::force_portable_kernels(false);
    cpu::attn::reset_bf16_path();
  }
};

std::vector<Case> cases() {
  return {{2, 77, 3, 32}, {1, 130, 2, 64, 0.2}, {1, 70, 2, 128}, {2, 67, 3, 32, 0.1}, {1, 9, 2, 5}};
}

AttentionDropout dropout_of(const Case& k) {
  return {k.dropout, rng_key(7, 1, 2, 3)};
}

}  // namespace

TEST_CASE("attention kernel: f32 forward and backward equal the f64 loops", "[attention][runtime]") {
  for (bool portable : {false, true}) {
    PathScope scope(portable);
    for (const Case& k : cases()) {
      INFO("B=" << k.bsz << " T=" << k.t_len << " H=" << k.heads << " D=" << k.d << " dropout " << k.dropout
                << (portable ? " portable" : " SIMD"));
      Tensor qkv = testutil::random({k.bsz, k.t_len, 3 * k.heads * k.d}, DType::F32, 11, -2.0, 2.0);
      Tensor dout = testutil::random({k.bsz, k.t_len, k.heads * k.d}, DType::F32, 12);
      Result got = run_op(k, qkv, dout, dropout_of(k));
      Result want = reference(k, qkv.to_double_vector(), dout.to_double_vector(), dropout_of(k));
      require_close(got.out, want.out, 5e-6, "out");  // worst seen ~1e-6
      require_close(got.lse, want.lse, 1e-6, "lse");
      require_close(got.dqkv, want.dqkv, 1e-5, "dqkv");
    }
  }
}

TEST_CASE("attention kernel: bf16 operands equal the f64 attention of the rounded q, k, v",
          "[attention][runtime][bf16]") {
  for (Bf16Path path : {Bf16Path::Widened, Bf16Path::Dot})
    for (bool portable : {false, true}) {
      PathScope scope(portable, path);
      for (const Case& k : cases()) {
        INFO("B=" << k.bsz << " T=" << k.t_len << " H=" << k.heads << " D=" << k.d << " dropout " << k.dropout
                  << (path == Bf16Path::Dot ? " dot" : " widened") << (portable ? " portable" : " SIMD"));
        Tensor qkv = testutil::random({k.bsz, k.t_len, 3 * k.heads * k.d}, DType::F32, 11, -2.0, 2.0).to(DType::BF16);
        Tensor dout = testutil::random({k.bsz, k.t_len, k.heads * k.d}, DType::F32, 12);
        Result got = run_op(k, qkv, dout, dropout_of(k));
        Result want = reference(k, qkv.to_double_vector(), dout.to_double_vector(), dropout_of(k));
        // P, dO and dS enter their products rounded to bf16 (relative error <= 2^-9 each): a few 2^-9
        // of the sums' magnitude (worst seen: out 0.004, dqkv 0.007). lse comes from exact scores.
        require_close(got.out, want.out, 1e-2, "out");
        require_close(got.lse, want.lse, 1e-6, "lse");
        require_close(got.dqkv, want.dqkv, 2e-2, "dqkv");
      }
    }
}

TEST_CASE("attention kernel: the bf16 paths agree up to f32 summation order", "[attention][runtime][bf16]") {
  Case k{2, 77, 3, 32, 0.1};
  Tensor qkv = testutil::random({k.bsz, k.t_len, 3 * k.heads * k.d}, DType::F32, 21, -2.0, 2.0).to(DType::BF16);
  Tensor dout = testutil::random({k.bsz, k.t_len, k.heads * k.d}, DType::F32, 22);
  auto run = [&](bool portable, Bf16Path path) {
    PathScope scope(portable, path);
    return run_op(k, qkv, dout, dropout_of(k));
  };
  Result widened = run(false, Bf16Path::Widened);
  for (bool portable : {false, true}) {
    INFO((portable ? "portable" : "SIMD") << " dot vs widened");
    Result dot = run(portable, Bf16Path::Dot);
    // Where the paths' f32 scores round differently, an entry of P may round to the neighbouring
    // bf16 value (2^-8 relative) in one path only: a margin above the f32 differences (worst seen 2e-7).
    require_close(dot.out, widened.out, 2e-3, "out");
    require_close(dot.dqkv, widened.dqkv, 2e-3, "dqkv");
    require_close(dot.lse, widened.lse, 1e-6, "lse");
  }
}

TEST_CASE("attention kernel: the same bits on every run and for 1 or 2 threads", "[attention][runtime]") {
  for (double p : {0.1, 0.0})
    for (DType dt : {DType::F32, DType::BF16}) {
      Case k{3, 100, 4, 64, p};
      INFO("dropout " << p << (dt == DType::BF16 ? " bf16" : " f32"));
      Tensor qkv = testutil::random({k.bsz, k.t_len, 3 * k.heads * k.d}, DType::F32, 31).to(dt);
      Tensor dout = testutil::random({k.bsz, k.t_len, k.heads * k.d}, DType::F32, 32);
      int saved = omp_get_max_threads();
      omp_set_num_threads(1);
      Result one = run_op(k, qkv, dout, dropout_of(k));
      omp_set_num_threads(2);
      Result a = run_op(k, qkv, dout, dropout_of(k)), b = run_op(k, qkv, dout, dropout_of(k));
      omp_set_num_threads(saved);
      CHECK(same_bits(a.out, b.out));
      CHECK(same_bits(a.dqkv, b.dqkv));
      CHECK(same_bits(a.out, one.out));
      CHECK(same_bits(a.lse, one.lse));
      CHECK(same_bits(a.dqkv, one.dqkv));
    }
}

namespace {

// The epilogues of one tile GEMM (C [m, n] = alpha A B, a ColsToRow region from row `off`) against
// the plain product C0 and a pass over it, on the entries the region computes (j <= off + i): the
// same values bit for bit.
template <class T>
void check_epilogues(bool portable) {
  using Epi = cpu::attn::Epilogue<T>;
  PathScope scope(portable);
  const int64_t m = 29, n = 77, k = 19, off = 40, ld = 80;
  uint64_t state = 12345;
  auto next = [&] {  // uniform in [-2, 2)
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return T(double(state >> 11) / double(1ull << 53) * 4.0 - 2.0);
  };
  std::vector<T> a(size_t(m * k)), b(size_t(k * n)), x(size_t(m * ld)), v(static_cast<size_t>(m));
  for (auto* w : {&a, &b, &x, &v})
    for (T& e : *w) e = next();
  T alpha = T(0.375);
  cpu::attn::Region region{cpu::attn::Causal::ColsToRow, off};
  auto run = [&](const Epi& epi) {
    std::vector<T> c(size_t(m * ld), T(0));
    cpu::attn::tile_gemm<T>(m, n, k, alpha, {a.data(), k, 1}, b.data(), n, false, c.data(), ld, region, epi);
    return c;
  };
  std::vector<T> c0 = run({});
  std::vector<T> vmax(size_t(16 * m), T(-INFINITY));
  std::vector<T> exp = run({Epi::Exp, v.data()}), grad = run({Epi::Grad, v.data(), x.data(), ld}),
                 scaled = run({Epi::RowScale, v.data()}), maxed = run({Epi::RowMax, nullptr, nullptr, 0, vmax.data()});
  for (int64_t i = 0; i < m; ++i) {
    int64_t valid = std::min(n, off + i + 1);
    std::vector<T> row(c0.begin() + i * ld, c0.begin() + i * ld + valid);
    cpu::attn::exp_shifted_row(row.data(), valid, v[size_t(i)]);
    T mx = T(-INFINITY);
    for (int64_t j = 0; j < valid; ++j) {
      size_t at = size_t(i * ld + j);
      INFO("row " << i << " column " << j << (portable ? " portable" : " SIMD"));
      REQUIRE(exp[at] == row[size_t(j)]);
      REQUIRE(grad[at] == x[at] * (c0[at] - v[size_t(i)]));
      REQUIRE(scaled[at] == c0[at] * v[size_t(i)]);
      REQUIRE(maxed[at] == c0[at]);
      mx = std::max(mx, c0[at]);
    }
    REQUIRE(cpu::attn::max16(vmax.data() + 16 * i) == mx);
  }
}

}  // namespace

TEST_CASE("attention kernel: tile epilogues equal a pass over the product", "[attention][runtime]") {
  for (bool portable : {false, true}) check_epilogues<float>(portable);
  check_epilogues<double>(true);
}
