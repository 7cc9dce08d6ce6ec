// `moetrain bench ops`: every kernel family timed on representative shapes.
//   GEMM          runtime ops::matmul vs raw cblas_sgemm on the same buffers (ratio = ours/raw)
//   attention     fused causal forward+backward, GFLOP/s and ratio to the machine's SGEMM
//   memory-bound  layernorm, GELU, softmax, embedding, cross-entropy in GB/s
#include "tools/bench/ops_bench.h"

#include <cblas.h>
#include <omp.h>

#include <cstdio>
#include <string>

#include "runtime/ops.h"
#include "tools/bench/report.h"
#include "tools/bench/timer.h"

namespace mt::bench {
namespace {

Tensor random_tensor(const Shape& shape, uint64_t seed, double scale = 1.0) {
  Tensor t = Tensor::empty(shape, DType::F32);
  float* p = t.data<float>();
  RngKey key{seed, 99};
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = float(scale * (2.0 * uniform_at(key, uint64_t(i)) - 1.0));
  return t;
}

double gflops(double flops, double seconds) {
  return flops / seconds * 1e-9;
}
double gbps(double bytes, double seconds) {
  return bytes / seconds * 1e-9;
}

// Raw CBLAS SGEMM seconds for C[m,n] = A[m,k] B[k,n]: the machine's reference throughput.
double raw_sgemm_seconds(const Tensor& a, const Tensor& b, Tensor& c, double target) {
  int m = int(c.size(0)), n = int(c.size(1)), k = int(a.size(1));
  return time_per_call(
      [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a.data<float>(), k, b.data<float>(), n,
                    0.0f, c.data<float>(), n);
      },
      target);
}

struct GemmShape {
  int64_t m, n, k;
  bool trans_b;
};

}  // namespace

int run_ops_bench(const BenchOptions& opt) {
  Reporter rep("ops", opt.json);
  double target = opt.quick ? 0.02 : 0.08;
  if (!opt.json)
    std::printf("moetrain bench ops: %d OpenMP threads, OpenBLAS %s (float32)\n", omp_get_max_threads(),
                openblas_get_parallel() == 2   ? "OpenMP build"
                : openblas_get_parallel() == 1 ? "pthreads build"
                                               : "serial build");
  rep.header();

  // --- reference SGEMM throughput ---------------------------------------------------------------
  int64_t ref = opt.quick ? 512 : 1024;
  Tensor ra = random_tensor({ref, ref}, 1), rb = random_tensor({ref, ref}, 2),
         rc = Tensor::empty({ref, ref}, DType::F32);
  double sgemm = gflops(2.0 * ref * ref * ref, raw_sgemm_seconds(ra, rb, rc, target));
  rep.line("sgemm_raw_" + std::to_string(ref), sgemm, "GFLOP/s", -1, "cblas_sgemm, the reference for ratios");

  // --- GEMM: runtime vs raw on the same shapes --------------------------------------------------
  std::vector<GemmShape> shapes = {{256, 256, 256, false}, {512, 512, 512, false}, {1024, 768, 256, true}};
  if (!opt.quick) {
    shapes.push_back({1024, 1024, 1024, false});
    shapes.push_back({2048, 3072, 768, true});
  }
  for (const GemmShape& s : shapes) {
    Tensor a = random_tensor({s.m, s.k}, 3);
    Tensor b = s.trans_b ? random_tensor({s.n, s.k}, 4) : random_tensor({s.k, s.n}, 4);
    Tensor c = Tensor::empty({s.m, s.n}, DType::F32);
    double flops = 2.0 * s.m * s.n * s.k;
    int m = int(s.m), n = int(s.n), k = int(s.k);
    PairTiming t = time_pair(
        [&] {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, s.trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f,
                      a.data<float>(), k, b.data<float>(), s.trans_b ? k : n, 0.0f, c.data<float>(), n);
        },
        [&] { ops::matmul(a, false, b, s.trans_b, c); }, target);
    std::string name = std::string("matmul_") + (s.trans_b ? "nt_" : "nn_") + std::to_string(s.m) + "x" +
                       std::to_string(s.n) + "x" + std::to_string(s.k);
    rep.line(name, gflops(flops, t.seconds_b), "GFLOP/s", t.ratio_a_over_b,
             "ratio = runtime / raw cblas_sgemm (speed), interleaved");
  }

  // --- causal attention -------------------------------------------------------------------------
  {
    int64_t bsz = 8, t_len = 256, heads = 8, d = 32, c = heads * d;
    Tensor qkv = random_tensor({bsz, t_len, 3 * c}, 5);
    Tensor out = Tensor::empty({bsz, t_len, c}, DType::F32), lse = Tensor::empty({bsz, heads, t_len}, DType::F32);
    Tensor dout = random_tensor({bsz, t_len, c}, 6), dqkv = Tensor::zeros({bsz, t_len, 3 * c}, DType::F32);
    // Causal FLOPs: each of the 2 forward and 4 backward matmuls costs 2*D*T(T+1)/2 per (b,h).
    double mm = double(bsz * heads) * d * t_len * (t_len + 1);
    // Timed in alternation with the reference SGEMM, so the ratio is immune to clock drift.
    auto sgemm_call = [&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(ref), int(ref), int(ref), 1.0f, ra.data<float>(),
                  int(ref), rb.data<float>(), int(ref), 0.0f, rc.data<float>(), int(ref));
    };
    double sgemm_flops = 2.0 * ref * ref * ref;
    PairTiming fwd = time_pair(
        sgemm_call, [&] { ops::attention_forward(qkv, heads, out, lse); }, target);
    PairTiming fb = time_pair(
        sgemm_call,
        [&] {
          ops::attention_forward(qkv, heads, out, lse);
          ops::attention_backward(dout, qkv, out, lse, heads, dqkv);
        },
        target);
    rep.line("attention_fwd_B8_T256_H8_D32", gflops(2 * mm, fwd.seconds_b), "GFLOP/s",
             2 * mm / sgemm_flops * fwd.ratio_a_over_b, "ratio to sgemm_raw, interleaved");
    rep.line("attention_fwdbwd_B8_T256_H8_D32", gflops(6 * mm, fb.seconds_b), "GFLOP/s",
             6 * mm / sgemm_flops * fb.ratio_a_over_b,
             "ratio to sgemm_raw, interleaved; causal FLOPs, recompute not counted");
  }

  // --- memory-bound kernels ---------------------------------------------------------------------
  {
    int64_t n = 4096, c = 768;
    Tensor x = random_tensor({n, c}, 7), w = random_tensor({c}, 8), b = random_tensor({c}, 9);
    Tensor y = Tensor::empty({n, c}, DType::F32), mean = Tensor::empty({n}, DType::F32),
           rstd = Tensor::empty({n}, DType::F32);
    Tensor dy = random_tensor({n, c}, 10), dx = Tensor::zeros({n, c}, DType::F32);
    Tensor dw = Tensor::zeros({c}, DType::F32), db = Tensor::zeros({c}, DType::F32);
    double bytes = double(n * c) * 4;
    double t = time_per_call([&] { ops::layernorm_forward(x, w, b, 1e-5, y, mean, rstd); }, target);
    rep.line("layernorm_fwd_4096x768", gbps(2 * bytes, t), "GB/s");
    t = time_per_call([&] { ops::layernorm_backward(dy, x, w, mean, rstd, &dx, &dw, &db); }, target);
    rep.line("layernorm_bwd_4096x768", gbps(4 * bytes, t), "GB/s");
    t = time_per_call([&] { ops::gelu_forward(x, y); }, target);
    rep.line("gelu_fwd_4096x768", gbps(2 * bytes, t), "GB/s");
    t = time_per_call([&] { ops::gelu_backward(x, dy, dx); }, target);
    rep.line("gelu_bwd_4096x768", gbps(4 * bytes, t), "GB/s");
    t = time_per_call([&] { ops::softmax_forward(x, y); }, target);
    rep.line("softmax_fwd_4096x768", gbps(2 * bytes, t), "GB/s");
    t = time_per_call([&] { ops::softmax_backward(y, dy, dx); }, target);
    rep.line("softmax_bwd_4096x768", gbps(4 * bytes, t), "GB/s");
  }
  {
    int64_t bsz = 8, t_len = 256, v = 50304, c = 256;
    Tensor idx = Tensor::empty({bsz, t_len}, DType::I32);
    for (int64_t i = 0; i < idx.numel(); ++i) idx.data<int32_t>()[i] = int32_t((i * 7919) % v);
    Tensor wte = random_tensor({v, c}, 11), wpe = random_tensor({t_len, c}, 12);
    Tensor out = Tensor::empty({bsz, t_len, c}, DType::F32), dwte = Tensor::zeros({v, c}, DType::F32),
           dwpe = Tensor::zeros({t_len, c}, DType::F32);
    double bytes = double(bsz * t_len * c) * 4;
    double t = time_per_call([&] { ops::embedding_forward(idx, wte, wpe, out); }, target);
    rep.line("embedding_fwd_B8_T256_C256", gbps(3 * bytes, t), "GB/s");
    t = time_per_call([&] { ops::embedding_backward(out, idx, &dwte, &dwpe); }, target);
    rep.line("embedding_bwd_B8_T256_C256", gbps(5 * bytes, t), "GB/s");
  }
  {
    int64_t n = opt.quick ? 64 : 256, v = 50304;
    Tensor logits = random_tensor({n, v}, 13, 4.0), targets = Tensor::empty({n}, DType::I32);
    for (int64_t i = 0; i < n; ++i) targets.data<int32_t>()[i] = int32_t((i * 31) % v);
    Tensor target_logits = Tensor::empty({n}, DType::F32), lse = Tensor::empty({n}, DType::F32);
    Tensor dl = Tensor::full({n}, 1.0 / double(n), DType::F32), dlogits = Tensor::zeros({n, v}, DType::F32);
    double bytes = double(n * v) * 4;
    double t = time_per_call([&] { ops::cross_entropy_forward(logits, targets, lse, target_logits); }, target);
    rep.line("cross_entropy_fwd_" + std::to_string(n) + "x50304", gbps(bytes, t), "GB/s");
    t = time_per_call([&] { ops::cross_entropy_backward(logits, targets, lse, dl, dlogits); }, target);
    rep.line("cross_entropy_bwd_" + std::to_string(n) + "x50304", gbps(3 * bytes, t), "GB/s");
  }
  return 0;
}

}  // namespace mt::bench
