// The CPU attention kernel (runtime/cpu/attention.cpp) on its own micro-kernels, against a naive
// f64 loop: f32 forward and backward for head sizes 32, 64 and 128, sequences that are not a
// multiple of the 64-row block, more heads than threads, with and without dropout, on the AVX-512
// and the portable paths; bf16 operands (precision: bf16) against the f64 attention of the rounded
// q, k, v, on both bf16 paths (widened to f32, VDPBF16PS dot products); the same bits from run to
// run and for 1 or 2 threads; the micro-kernels' epilogues against plain passes over C.
#include <omp.h>

#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>

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

// The bf16 paths to test: widened and dot everywhere (dot falls back to widened without
// AVX512-BF16), AMX where the CPU has it.
std::vector<Bf16Path> bf16_paths() {
  std::vector<Bf16Path> paths = {Bf16Path::Widened, Bf16Path::Dot};
  if (cpu::attn::amx_units()) paths.push_back(Bf16Path::Amx);
  return paths;
}

const char* path_name(Bf16Path path) {
  return path == Bf16Path::Amx ? " amx" : path == Bf16Path::Dot ? " dot" : " widened";
}

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

TEST_CASE("attention kernel: rows whose largest score lies far above their diagonal one", "[attention][runtime]") {
  // The forward shifts each row's exps by its diagonal score. Every query is all ones and the first
  // key of each head k0 times that, so every row's first score is scale * D * k0 above the rest: 57
  // (k0 = 10: exps up to e^57 = 2^82, shifted by the diagonal) and 340 (k0 = 60: the blocks
  // redone, shifted by the rows' maxima); both as the f64 loops, on every path.
  for (bool portable : {false, true})
    for (double k0 : {10.0, 60.0}) {
      PathScope scope(portable);
      Case k{2, 77, 2, 32};
      INFO("first key x " << k0 << (portable ? " portable" : " SIMD"));
      Tensor qkv = testutil::random({k.bsz, k.t_len, 3 * k.heads * k.d}, DType::F32, 13, -1.0, 1.0);
      Tensor dout = testutil::random({k.bsz, k.t_len, k.heads * k.d}, DType::F32, 14);
      int64_t c = k.heads * k.d;
      float* x = qkv.data<float>();
      for (int64_t b = 0; b < k.bsz; ++b)
        for (int64_t t = 0; t < k.t_len; ++t)
          for (int64_t j = 0; j < c; ++j) {
            float* row = x + (b * k.t_len + t) * 3 * c;
            row[j] = 1.0f;
            if (t == 0) row[c + j] = float(k0);
          }
      Result got = run_op(k, qkv, dout, dropout_of(k));
      Result want = reference(k, qkv.to_double_vector(), dout.to_double_vector(), dropout_of(k));
      require_close(got.out, want.out, 5e-6, "out");
      require_close(got.lse, want.lse, 1e-6, "lse");
      // scores of 340 carry f32 rounding of ~3e-5: P = exp(S - lse) and the gradient by as much.
      // Scores of 57 (82 in the kernel's base 2) carry ~4e-6 each in P = 2^(S2 - lse log2 e), and
      // so does the lse's conversion; dV of the first key sums 77 such P dO: seen 1.75e-5 (1.3e-6
      // in base e, where S and lse rounded the same value and the first key's P came out exactly 1)
      require_close(got.dqkv, want.dqkv, k0 > 20 ? 1e-4 : 4e-5, "dqkv");
    }
}

TEST_CASE("attention kernel: bf16 operands equal the f64 attention of the rounded q, k, v",
          "[attention][runtime][bf16]") {
  for (Bf16Path path : bf16_paths())
    for (bool portable : {false, true}) {
      if (path == Bf16Path::Amx && portable) continue;  // (AMX has no portable form)
      PathScope scope(portable, path);
      for (const Case& k : cases()) {
        INFO("B=" << k.bsz << " T=" << k.t_len << " H=" << k.heads << " D=" << k.d << " dropout " << k.dropout
                  << path_name(path) << (portable ? " portable" : " SIMD"));
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
  if (!cpu::attn::amx_units()) return;
  INFO("amx vs widened");
  Result amx = run(false, Bf16Path::Amx);
  require_close(amx.out, widened.out, 2e-3, "out");
  require_close(amx.dqkv, widened.dqkv, 2e-3, "dqkv");
  require_close(amx.lse, widened.lse, 1e-6, "lse");
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
  std::vector<T> vmax(size_t(16 * m), T(-INFINITY)), sums(size_t(16 * m), T(0));
  std::vector<T> exp = run({Epi::Exp2, v.data()}), grad = run({Epi::Grad, v.data(), x.data(), ld}),
                 scaled = run({Epi::RowScale, v.data()}), maxed = run({Epi::RowMax, nullptr, nullptr, 0, vmax.data()}),
                 summed = run({Epi::Exp2Sum, v.data(), nullptr, 0, sums.data()});
  for (int64_t i = 0; i < m; ++i) {
    int64_t valid = std::min(n, off + i + 1);
    std::vector<T> row(c0.begin() + i * ld, c0.begin() + i * ld + valid);
    cpu::attn::exp2_shifted_row(row.data(), valid, v[size_t(i)]);
    T mx = T(-INFINITY), lane_sums[16] = {};
    for (int64_t j = 0; j < valid; ++j) {
      size_t at = size_t(i * ld + j);
      INFO("row " << i << " column " << j << (portable ? " portable" : " SIMD"));
      REQUIRE(exp[at] == row[size_t(j)]);
      REQUIRE(grad[at] == x[at] * (c0[at] - v[size_t(i)]));
      REQUIRE(scaled[at] == c0[at] * v[size_t(i)]);
      REQUIRE(maxed[at] == c0[at]);
      REQUIRE(summed[at] == row[size_t(j)]);
      mx = std::max(mx, c0[at]);
      lane_sums[j % 16] += row[size_t(j)];  // in the order of the columns, as the tiles add
    }
    REQUIRE(cpu::attn::max16(vmax.data() + 16 * i) == mx);
    for (int l = 0; l < 16; ++l) REQUIRE(sums[size_t(16 * i + l)] == lane_sums[l]);
  }
}

}  // namespace

TEST_CASE("attention kernel: the AVX-512 exp2 equals vexp2 bit for bit, NaN and the limits included",
          "[attention][runtime]") {
  if (!cpu::attn::avx512_units()) return;
  // every 2^-10 from -130 to 130 (both sides of the cut to zero at -126 and of overflow at 128),
  // every 997th f32 bit pattern, then the specials; a row of 16k + 5 entries so the masked tail runs
  // too. +inf is left out: vexp2 gives +inf, the AVX-512 form VSCALEFPS's (NaN, +inf) (+inf on Zen 4).
  std::vector<float> x;
  for (int i = -130 * 1024; i <= 130 * 1024; ++i) x.push_back(float(i) / 1024.0f);
  for (uint64_t bits = 0; bits < (uint64_t(1) << 32); bits += 997) {
    float v;
    uint32_t b = uint32_t(bits);
    std::memcpy(&v, &b, 4);
    if (v != INFINITY) x.push_back(v);
  }
  for (float v : {-126.0f, std::nextafter(-126.0f, 0.0f), std::nextafter(-126.0f, -200.0f), 127.5f,
                  std::nextafter(128.0f, 0.0f), 128.0f, -INFINITY, NAN, -NAN, 0.0f, -0.0f, 1e-30f, -1e-30f, -1e30f,
                  1e30f, std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min()})
    x.push_back(v);
  while (x.size() % 16 != 5) x.push_back(NAN);
  std::vector<float> simd = x;
  cpu::attn::exp2_shifted_row(simd.data(), int64_t(simd.size()), 0.0f);
  for (size_t i = 0; i < x.size(); ++i) {
    float want = cpu::vexp2(x[i]);
    if (std::isnan(want)) {
      INFO("x = " << x[i] << ": " << simd[i]);
      REQUIRE(std::isnan(simd[i]));
    } else if (std::memcmp(&simd[i], &want, 4) != 0) {
      INFO("x = " << x[i] << ": " << simd[i] << " against vexp2's " << want);
#ifdef __FMA__
      REQUIRE(std::memcmp(&simd[i], &want, 4) == 0);
#else  // (vexp2 compiled without FMA rounds each step of its polynomial: a unit or two apart)
      uint32_t a, b;
      std::memcpy(&a, &simd[i], 4);
      std::memcpy(&b, &want, 4);
      REQUIRE(std::max(a, b) - std::min(a, b) <= 2);
#endif
    }
  }
}

TEST_CASE("attention kernel: tile GEMMs of no rows, and of more row tiles than the starts kept",
          "[attention][runtime]") {
  // m = 0 writes nothing; m = 983 (71 row tiles of up to 14 rows: past the 64 whose first rows
  // drive() keeps) equals the f64 sums, in both column layouts of the scores (ColsToRow) and a plain one
  for (bool portable : {false, true}) {
    PathScope scope(portable);
    const int64_t n = 40, k = 9;
    std::vector<float> untouched(8, 7.0f);
    cpu::attn::tile_gemm<float>(0, n, k, 1.0f, {nullptr, k, 1}, nullptr, n, false, untouched.data(), n, {});
    CHECK(untouched == std::vector<float>(8, 7.0f));
    const int64_t m = 983;
    std::vector<float> a(size_t(m * k)), b(size_t(k * n));
    for (size_t i = 0; i < a.size(); ++i) a[i] = float(int(i * 37 % 101) - 50) / 64.0f;
    for (size_t i = 0; i < b.size(); ++i) b[i] = float(int(i * 53 % 89) - 44) / 32.0f;
    for (cpu::attn::Causal kind : {cpu::attn::Causal::None, cpu::attn::Causal::ColsToRow}) {
      std::vector<float> c(size_t(m * n), 0.0f);
      cpu::attn::tile_gemm<float>(m, n, k, 1.0f, {a.data(), k, 1}, b.data(), n, false, c.data(), n, {kind, 0});
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          if (kind == cpu::attn::Causal::ColsToRow && j > i) continue;  // (not written by the region)
          double want = 0;
          for (int64_t q = 0; q < k; ++q) want += double(a[size_t(i * k + q)]) * double(b[size_t(q * n + j)]);
          INFO("row " << i << " column " << j << (portable ? " portable" : " SIMD"));
          REQUIRE(c[size_t(i * n + j)] == Approx(want).margin(1e-5));
        }
    }
  }
}

TEST_CASE("attention kernel: tile epilogues equal a pass over the product", "[attention][runtime]") {
  for (bool portable : {false, true}) check_epilogues<float>(portable);
  check_epilogues<double>(true);
}

namespace {

// One bf16 tile GEMM on the current path: C [m, n] (+)= alpha A B over a region, with A given by
// rows (pairs contiguous, rs = even k) or transposed (pairs along k, rs = 2: the dV / dK operand
// of the dot path), against the f64 sums of the same bf16 values. The operands are zero where the
// region skips k (as the attention's P is above the diagonal).
struct Bf16TileCase {
  int64_t m, n, k;
  cpu::attn::Region region;
  bool transposed_a, accumulate;
};

std::vector<float> run_bf16_tile(const Bf16TileCase& tc, const std::vector<float>& a, const std::vector<float>& b,
                                 std::vector<float> c, int64_t ldc, float alpha,
                                 const cpu::attn::Epilogue<float>& epi = {}) {
  int64_t kp = (tc.k + 1) / 2;  // pairs
  std::vector<uint16_t> a16(size_t(tc.m * 2 * kp), 0), b16(size_t(kp * 2 * tc.n), 0);
  for (int64_t i = 0; i < tc.m; ++i)
    for (int64_t q = 0; q < tc.k; ++q) {
      size_t at = tc.transposed_a ? size_t((q / 2) * 2 * tc.m + 2 * i + q % 2) : size_t(i * 2 * kp + q);
      a16[at] = float_to_bf16_bits(a[size_t(i * tc.k + q)]);
    }
  for (int64_t q = 0; q < tc.k; ++q)
    for (int64_t j = 0; j < tc.n; ++j)
      b16[size_t((q / 2) * 2 * tc.n + 2 * j + q % 2)] = float_to_bf16_bits(b[size_t(q * tc.n + j)]);
  cpu::attn::StridedA<uint16_t> sa = tc.transposed_a ? cpu::attn::StridedA<uint16_t>{a16.data(), 2, 2 * tc.m}
                                                     : cpu::attn::StridedA<uint16_t>{a16.data(), 2 * kp, 2};
  cpu::attn::tile_gemm_bf16(tc.m, tc.n, tc.k, alpha, sa, b16.data(), 2 * tc.n, tc.accumulate, c.data(), ldc, tc.region,
                            epi);
  return c;
}

}  // namespace

TEST_CASE("attention kernel: AMX tiles equal the f64 sums of the bf16 products, every region and epilogue",
          "[attention][runtime][bf16]") {
  using cpu::attn::Causal;
  if (!cpu::attn::amx_units()) {
    WARN("no AMX tiles on this CPU (or not granted by the OS): the AMX path is not run");
    return;
  }
  uint64_t state = 99;
  auto next = [&] {  // bf16 values in [-2, 2)
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return bf16_bits_to_float(float_to_bf16_bits(float(double(state >> 11) / double(1ull << 53) * 4.0 - 2.0)));
  };
  std::vector<Bf16TileCase> cases = {
      {64, 77, 32, {Causal::ColsToRow, 13}, false, false}, {29, 40, 19, {}, false, false},
      {64, 32, 77, {Causal::KToRow, 13}, false, false},    {77, 32, 64, {Causal::KFromRow, 13}, true, true},
      {256, 64, 64, {Causal::KFromRow, 192}, true, true},  {33, 17, 70, {}, true, false}};
  for (const Bf16TileCase& tc : cases) {
    INFO("m " << tc.m << " n " << tc.n << " k " << tc.k << " region " << int(tc.region.kind) << " off " << tc.region.off
              << (tc.transposed_a ? " transposed A" : "") << (tc.accumulate ? " accumulate" : ""));
    int64_t ldc = tc.n + 3;
    std::vector<float> a(size_t(tc.m * tc.k)), b(size_t(tc.k * tc.n)), c0(size_t(tc.m * ldc));
    for (int64_t i = 0; i < tc.m; ++i)
      for (int64_t q = 0; q < tc.k; ++q) {
        bool skipped = (tc.region.kind == Causal::KToRow && q > tc.region.off + i) ||
                       (tc.region.kind == Causal::KFromRow && tc.region.off + q < i);
        a[size_t(i * tc.k + q)] = skipped ? 0.0f : next();
      }
    for (float& x : b) x = next();
    for (float& x : c0) x = next();
    float alpha = 0.375f;
    PathScope amx(false, Bf16Path::Amx);
    std::vector<float> got = run_bf16_tile(tc, a, b, c0, ldc, alpha);
    for (int64_t i = 0; i < tc.m; ++i)
      for (int64_t j = 0; j < tc.n; ++j) {
        if (tc.region.kind == Causal::ColsToRow && j > tc.region.off + i) continue;  // not computed
        double want = 0;
        for (int64_t q = 0; q < tc.k; ++q) want += double(a[size_t(i * tc.k + q)]) * b[size_t(q * tc.n + j)];
        want = alpha * want + (tc.accumulate ? c0[size_t(i * ldc + j)] : 0.0);
        INFO("C[" << i << ", " << j << "]");
        REQUIRE(std::fabs(got[size_t(i * ldc + j)] - want) <= 1e-5 * (1 + std::fabs(want)));
      }
    if (tc.accumulate) continue;
    // the epilogues: the same bits as a pass over the plain product (ColsToRow: its valid entries)
    std::vector<float> v(size_t(tc.m)), x(size_t(tc.m * ldc)), vmax(size_t(16 * tc.m), -INFINITY);
    for (float& e : v) e = next();
    for (float& e : x) e = next();
    using Epi = cpu::attn::Epilogue<float>;
    std::vector<float> exp = run_bf16_tile(tc, a, b, c0, ldc, alpha, {Epi::Exp2, v.data()});
    std::vector<float> grad = run_bf16_tile(tc, a, b, c0, ldc, alpha, {Epi::Grad, v.data(), x.data(), ldc});
    std::vector<float> scaled = run_bf16_tile(tc, a, b, c0, ldc, alpha, {Epi::RowScale, v.data()});
    for (int64_t i = 0; i < tc.m; ++i) {
      int64_t valid = tc.region.kind == Causal::ColsToRow ? std::min(tc.n, tc.region.off + i + 1) : tc.n;
      std::vector<float> row(got.begin() + i * ldc, got.begin() + i * ldc + valid);
      cpu::attn::exp2_shifted_row(row.data(), valid, v[size_t(i)]);
      for (int64_t j = 0; j < valid; ++j) {
        size_t at = size_t(i * ldc + j);
        REQUIRE(exp[at] == row[size_t(j)]);
        REQUIRE(grad[at] == x[at] * (got[at] - v[size_t(i)]));
        REQUIRE(scaled[at] == got[at] * v[size_t(i)]);
      }
    }
    if (tc.region.kind != Causal::ColsToRow) continue;
    run_bf16_tile(tc, a, b, c0, ldc, alpha, {Epi::RowMax, nullptr, nullptr, 0, vmax.data()});
    for (int64_t i = 0; i < tc.m; ++i) {
      float mx = -INFINITY;
      for (int64_t j = 0; j <= std::min(tc.n - 1, tc.region.off + i); ++j) mx = std::max(mx, got[size_t(i * ldc + j)]);
      REQUIRE(cpu::attn::max16(vmax.data() + 16 * i) == mx);
    }
  }
}

TEST_CASE("attention kernel: the vectorised bf16 packing rounds as float_to_bf16_bits", "[attention][runtime][bf16]") {
  if (!cpu::attn::avx512_units()) return;
  // ties (odd and even), NaN, infinities, denormals, zeros of both signs, and ordinary values
  std::vector<uint32_t> bits = {0x3f808000u, 0x3f818000u, 0x7fc00001u, 0x7f800001u, 0xff800000u, 0x7f800000u,
                                0x00000001u, 0x80400000u, 0x00000000u, 0x80000000u, 0x7f7fffffu, 0x3f800001u};
  for (int i = 0; i < 45; ++i) bits.push_back(uint32_t(2654435761u * uint32_t(i + 1)));
  std::vector<float> x(bits.size()), x1(bits.size());
  std::memcpy(x.data(), bits.data(), bits.size() * 4);
  for (size_t i = 0; i < x.size(); ++i) x1[i] = x[x.size() - 1 - i];
  int64_t n = int64_t(x.size());
  std::vector<uint16_t> row(x.size());
  cpu::attn::round_row_bf16_avx512(x.data(), n, row.data());
  std::vector<uint32_t> pairs(x.size()), strided(3 * x.size(), 7);
  cpu::attn::round_pairs_bf16_avx512(x.data(), x1.data(), n, pairs.data(), 1);
  cpu::attn::round_pairs_bf16_avx512(x.data(), nullptr, n, strided.data(), 3);
  for (size_t i = 0; i < x.size(); ++i) {
    INFO("bits " << std::hex << bits[i]);
    REQUIRE(row[i] == float_to_bf16_bits(x[i]));
    REQUIRE(pairs[i] == (uint32_t(float_to_bf16_bits(x[i])) | uint32_t(float_to_bf16_bits(x1[i])) << 16));
    REQUIRE(strided[3 * i] == uint32_t(float_to_bf16_bits(x[i])));
    REQUIRE(strided[3 * i + 1] == 7);
  }
}

TEST_CASE("attention kernel: the block row helpers equal the per-row ones, bit for bit", "[attention][runtime]") {
  if (!cpu::attn::avx512_units()) return;
  // blocks of an odd and an even row count, rows whose valid range ends inside a vector, on one,
  // at zero and at the block's end; the entries past the block's keys stay untouched
  for (auto [rows, valid0, keys] : std::vector<std::array<int64_t, 3>>{{7, 1, 7}, {64, 65, 128}, {10, 0, 37}}) {
    INFO(rows << " rows from " << valid0 << ", " << keys << " keys");
    int64_t ld = keys + 19;
    std::vector<float> s(size_t(rows * ld)), vmax(size_t(rows * 16));
    for (size_t i = 0; i < s.size(); ++i) s[i] = float(std::sin(0.37 * double(i)) * 6);
    for (size_t i = 0; i < vmax.size(); ++i) vmax[i] = float(std::cos(0.11 * double(i)) * 3 + 4);
    std::vector<float> by_block = s, by_row = s, shift(static_cast<size_t>(rows)), shift_row = shift;
    std::vector<double> sum(static_cast<size_t>(rows)), sum_row = sum;
    cpu::attn::block_exp_rows(by_block.data(), ld, valid0, rows, keys, vmax.data(), shift.data(), sum.data());
    for (int64_t r = 0; r < rows; ++r) {
      float* row = by_row.data() + r * ld;
      shift_row[size_t(r)] = cpu::attn::max16(vmax.data() + 16 * r);
      sum_row[size_t(r)] = cpu::attn::exp2_shifted_sum_row(row, valid0 + r, shift_row[size_t(r)]);
      cpu::attn::zero_row(row + valid0 + r, keys - valid0 - r);
    }
    REQUIRE(std::memcmp(by_block.data(), by_row.data(), s.size() * 4) == 0);
    REQUIRE(shift == shift_row);
    REQUIRE(sum == sum_row);

    std::vector<float> zeroed = s;
    cpu::attn::block_zero_tails(zeroed.data(), ld, valid0, rows, keys);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < ld; ++j)
        REQUIRE(zeroed[size_t(r * ld + j)] == (j >= valid0 + r && j < keys ? 0.0f : s[size_t(r * ld + j)]));

    std::vector<float> dots(static_cast<size_t>(rows));
    cpu::attn::block_row_dots(s.data(), by_row.data(), ld, rows, keys, dots.data());
    for (int64_t r = 0; r < rows; ++r)
      REQUIRE(dots[size_t(r)] == float(cpu::attn::row_dot(s.data() + r * ld, by_row.data() + r * ld, keys)));
  }
}

TEST_CASE("attention kernel: the vectorised transpose moves every value and nothing else", "[attention][runtime]") {
  if (!cpu::attn::avx512_units()) return;
  // whole 16 x 16 blocks, ragged edges on either side, a single row or column, NaN payloads kept
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{32, 32}, {77, 5}, {9, 130}, {1, 17}, {16, 1}}) {
    INFO(rows << " x " << cols);
    int64_t ld = cols + 3, ldt = rows + 5;
    std::vector<uint32_t> bits(size_t(rows * ld));
    for (size_t i = 0; i < bits.size(); ++i) bits[i] = uint32_t(2654435761u * uint32_t(i + 1)) | 0x7f800000u;
    std::vector<float> x(bits.size()), xt(size_t(cols * ldt), -1.0f);
    std::memcpy(x.data(), bits.data(), bits.size() * 4);
    cpu::attn::transpose_avx512(x.data(), rows, cols, ld, xt.data(), ldt);
    for (int64_t c = 0; c < cols; ++c)
      for (int64_t r = 0; r < ldt; ++r) {
        uint32_t got;
        std::memcpy(&got, &xt[size_t(c * ldt + r)], 4);
        if (r < rows)
          REQUIRE(got == bits[size_t(r * ld + c)]);
        else
          REQUIRE(xt[size_t(c * ldt + r)] == -1.0f);
      }
  }
}

TEST_CASE("attention kernel: a written gradient equals the one accumulated into zeros, on every path",
          "[attention][runtime]") {
  struct Path {
    bool portable;
    Bf16Path bf16;
    DType dtype;
  };
  std::vector<Path> paths = {{false, Bf16Path::Widened, DType::F32},
                             {true, Bf16Path::Widened, DType::F32},
                             {false, Bf16Path::Widened, DType::F64},
                             {false, Bf16Path::Widened, DType::BF16}};
  if (cpu::attn::bf16_units()) paths.push_back({false, Bf16Path::Dot, DType::BF16});
  if (cpu::attn::amx_units()) paths.push_back({false, Bf16Path::Amx, DType::BF16});
  for (const Path& path : paths)
    for (const Case& k : {Case{2, 77, 3, 32, 0.1}, Case{1, 130, 2, 64}, Case{1, 9, 2, 5}}) {
      INFO("T=" << k.t_len << " D=" << k.d << " dropout " << k.dropout << " " << dtype_name(path.dtype)
                << (path.portable ? " portable" : "") << " bf16 path " << int(path.bf16));
      PathScope scope(path.portable, path.bf16);
      DType f = path.dtype == DType::F64 ? DType::F64 : DType::F32;
      Tensor qkv = testutil::random({k.bsz, k.t_len, 3 * k.heads * k.d}, f, 41).to(path.dtype);
      Tensor dout = testutil::random({k.bsz, k.t_len, k.heads * k.d}, f, 42);
      Tensor out = Tensor::empty(dout.shape(), f), lse = Tensor::empty({k.bsz, k.heads, k.t_len}, f);
      ops::attention_forward(qkv, k.heads, out, lse, dropout_of(k));
      Tensor added = Tensor::zeros(qkv.shape(), f), written = Tensor::full(qkv.shape(), NAN, f);
      ops::attention_backward(dout, qkv, out, lse, k.heads, added, dropout_of(k));
      ops::attention_backward(dout, qkv, out, lse, k.heads, written, dropout_of(k), /*accumulate=*/false);
      std::vector<double> a = added.to_double_vector(), w = written.to_double_vector();
      for (size_t i = 0; i < a.size(); ++i) REQUIRE(w[i] == a[i]);  // every entry written (no NaN left)
    }
}
