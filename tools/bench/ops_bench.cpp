// `moetrain bench ops`: every kernel family timed on representative shapes.
//   GEMM          runtime ops::matmul vs raw cblas_sgemm on the same buffers (ratio = ours/raw)
//   bf16 GEMM     the model's bf16 GEMMs through ops::matmul, ratio to the library's plain bf16
//                 matmul (bf16_gemm_raw_1024: oneDNN on AMX / AVX512-BF16 where the CPU has them)
//   attention     fused causal forward+backward, GFLOP/s and ratio to the machine's SGEMM (f32, and
//                 bf16 qkv on each bf16 path the CPU has: widened, VDPBF16PS, AMX)
//   memory-bound  layernorm, GELU, softmax, embedding, cross-entropy in GB/s
// `--only GROUP[,GROUP...]` (kOpsGroups) runs some of them, after the SGEMM reference.
#include "tools/bench/ops_bench.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>

#include "runtime/cpu/attention_tile_gemm.h"
#include "runtime/cpu/cpu_features.h"
#include "runtime/cpu/gemm_bf16.h"
#include "runtime/error.h"
#include "runtime/ops.h"
#include "runtime/random.h"
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
  return time_per_call([&] { raw_sgemm(a, b, c); }, target);
}

struct GemmShape {
  int64_t m, n, k;
  bool trans_b;
};

Tensor random_bf16(const Shape& shape, uint64_t seed) {
  return rand_uniform(shape, DType::F32, rng_key(seed, 0, 0, 0), -1, 1).to(DType::BF16);
}

// The bf16 reference: c [n,n] = a [n,n] b [n,n] with its own buffers, on the library of the bf16
// path in use: oneDNN's primitive called directly, or ops::matmul's widened SGEMM.
struct Bf16Reference {
  Tensor a, b, c;
  std::function<void()> call;
  double flops;
  bool raw;  // the library called directly
};

Bf16Reference bf16_reference(int64_t n) {
  Bf16Reference r{random_bf16({n, n}, 3),
                  random_bf16({n, n}, 4),
                  Tensor::empty({n, n}, DType::F32),
                  {},
                  2.0 * double(n) * double(n) * double(n),
                  true};
  if (cpu::bf16_gemm_path() == cpu::Bf16GemmPath::OneDnn) r.call = cpu::raw_bf16_matmul(r.a, r.b, r.c);
  r.raw = bool(r.call);
  if (!r.raw) r.call = [a = r.a, b = r.b, c = r.c]() mutable { ops::matmul(a, false, b, false, c); };
  return r;
}

// A bf16 GEMM of the model: c [m,n] = op(a) op(b), named for the layer and the pass.
struct Bf16Gemm {
  std::string name;
  int64_t m, n, k;
  bool ta, tb;
};

// The three GEMMs of a linear layer in -> out over `tokens` rows (autograd/ops/linear.cpp):
// forward y [T,out] = x w^T, backward dx [T,in] = dy w and dw [out,in] = dy^T x.
std::vector<Bf16Gemm> linear_gemms(const std::string& layer, int64_t tokens, int64_t in, int64_t out) {
  return {{"fwd_" + layer, tokens, out, in, false, true},
          {"dx_" + layer, tokens, in, out, false, false},
          {"dw_" + layer, out, in, tokens, true, false}};
}

// The model's bf16 GEMMs through ops::matmul, each timed in alternation with the reference.
void report_bf16_gemms(const Reporter& rep, bool quick, double target) {
  Bf16Reference ref = bf16_reference(1024);
  int64_t tokens = quick ? 512 : 2048, hidden = 256;  // the bench model: micro-batch 8 x seq 256
  std::vector<Bf16Gemm> gemms = linear_gemms("fc1", tokens, hidden, 4 * hidden);
  for (const Bf16Gemm& g : linear_gemms("fc2", tokens, 4 * hidden, hidden)) gemms.push_back(g);
  if (!quick) {
    gemms.push_back({"square", 1024, 1024, 1024, false, false});
    for (const Bf16Gemm& g : linear_gemms("logits", tokens, hidden, 50304)) gemms.push_back(g);
  }
  std::string note = "ratio to bf16_gemm_raw, interleaved; " + cpu::bf16_gemm_description();
  for (const Bf16Gemm& g : gemms) {
    Tensor a = random_bf16(g.ta ? Shape{g.k, g.m} : Shape{g.m, g.k}, 5);
    Tensor b = random_bf16(g.tb ? Shape{g.n, g.k} : Shape{g.k, g.n}, 6);
    Tensor c = Tensor::empty({g.m, g.n}, DType::F32);
    double flops = 2.0 * double(g.m) * double(g.n) * double(g.k);
    PairTiming t = time_pair(
        ref.call, [&] { ops::matmul(a, g.ta, b, g.tb, c); }, target);
    rep.line(
        "matmul_bf16_" + g.name + "_" + std::to_string(g.m) + "x" + std::to_string(g.n) + "x" + std::to_string(g.k),
        gflops(flops, t.seconds_b), "GFLOP/s", flops / ref.flops * t.ratio_a_over_b, note);
  }
}

}  // namespace

void report_cpu_features(const Reporter& rep) {
  rep.line("cpu_features", omp_get_max_threads(), "threads", -1,
           cpu::cpu_features_summary() + "; bf16 GEMM: " + cpu::bf16_gemm_description());
}

double report_bf16_gemm_reference(const Reporter& rep, int64_t size, double target_seconds) {
  Bf16Reference ref = bf16_reference(size);
  double rate = gflops(ref.flops, time_per_call(ref.call, target_seconds));
  rep.line("bf16_gemm_raw_" + std::to_string(size), rate, "GFLOP/s", -1,
           std::string(ref.raw ? "the bf16 reference, the library called directly: "
                               : "the bf16 reference through ops::matmul: ") +
               cpu::bf16_gemm_description());
  return rate;
}

void raw_sgemm(const Tensor& a, const Tensor& b, Tensor& c) {
  int m = int(c.size(0)), n = int(c.size(1)), k = int(a.size(1));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a.data<float>(), k, b.data<float>(), n, 0.0f,
              c.data<float>(), n);
}

const std::vector<std::string> kOpsGroups = {"gemm", "bf16", "attention", "elementwise", "embedding", "cross_entropy"};

std::vector<std::string> parse_ops_groups(const std::string& value) {
  if (value.empty() || value.rfind("--", 0) == 0)
    throw Error("bench ops --only needs a value: one or more of its groups, comma-separated (e.g. --only attention)");
  std::vector<std::string> groups;
  size_t from = 0;
  while (from <= value.size()) {
    size_t comma = std::min(value.find(',', from), value.size());
    std::string g = value.substr(from, comma - from);
    if (std::find(kOpsGroups.begin(), kOpsGroups.end(), g) == kOpsGroups.end()) {
      std::string known;
      for (const std::string& k : kOpsGroups) known += (known.empty() ? "" : ", ") + k;
      throw Error("bench ops --only: unknown group '" + g + "' in '" + value + "'; groups: " + known +
                  " (comma-separated)");
    }
    groups.push_back(g);
    from = comma + 1;
  }
  return groups;
}

int run_ops_bench(const BenchOptions& opt) {
  Reporter rep("ops", opt.json);
  auto wanted = [&](const char* group) {
    return opt.only.empty() || std::find(opt.only.begin(), opt.only.end(), group) != opt.only.end();
  };
  double target = opt.quick ? 0.02 : 0.08;
  if (!opt.json)
    std::printf("moetrain bench ops: %d OpenMP threads, OpenBLAS %s (float32)\n", omp_get_max_threads(),
                openblas_get_parallel() == 2   ? "OpenMP build"
                : openblas_get_parallel() == 1 ? "pthreads build"
                                               : "serial build");
  rep.header();
  report_cpu_features(rep);

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
  if (!wanted("gemm")) shapes.clear();
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

  // --- bf16 GEMM: the model's shapes against the library's plain bf16 matmul ---------------------
  if (wanted("bf16")) {
    report_bf16_gemm_reference(rep, 1024, target);
    report_bf16_gemms(rep, opt.quick, target);
  }

  // --- causal attention -------------------------------------------------------------------------
  if (wanted("attention")) {
    int64_t bsz = 8, t_len = 256, heads = 8, d = 32, c = heads * d;
    Tensor qkv = random_tensor({bsz, t_len, 3 * c}, 5);
    Tensor out = Tensor::empty({bsz, t_len, c}, DType::F32), lse = Tensor::empty({bsz, heads, t_len}, DType::F32);
    Tensor dout = random_tensor({bsz, t_len, c}, 6), dqkv = Tensor::empty({bsz, t_len, 3 * c}, DType::F32);
    // Causal FLOPs: each of the 2 forward and 4 backward matmuls costs 2*D*T(T+1)/2 per (b,h).
    double mm = double(bsz * heads) * d * t_len * (t_len + 1);
    // Timed in alternation with the reference SGEMM, so the ratio is immune to clock drift.
    auto sgemm_call = [&] { raw_sgemm(ra, rb, rc); };
    double sgemm_flops = 2.0 * ref * ref * ref;
    PairTiming fwd = time_pair(
        sgemm_call, [&] { ops::attention_forward(qkv, heads, out, lse); }, target);
    auto forward_backward = [&](const Tensor& x, int64_t n_head, Tensor& x_lse) {  // timed against the SGEMM
      return time_pair(
          sgemm_call,
          [&] {
            ops::attention_forward(x, n_head, out, x_lse);
            ops::attention_backward(dout, x, out, x_lse, n_head, dqkv, {}, /*accumulate=*/false);
          },
          target);
    };
    PairTiming fb = forward_backward(qkv, heads, lse);
    rep.line("attention_fwd_B8_T256_H8_D32", gflops(2 * mm, fwd.seconds_b), "GFLOP/s",
             2 * mm / sgemm_flops * fwd.ratio_a_over_b, "ratio to sgemm_raw, interleaved");
    rep.line("attention_fwdbwd_B8_T256_H8_D32", gflops(6 * mm, fb.seconds_b), "GFLOP/s",
             6 * mm / sgemm_flops * fb.ratio_a_over_b,
             "ratio to sgemm_raw, interleaved; causal FLOPs, recompute not counted; dqkv written, as in training");
    // The same qkv as fewer, larger heads (the seed's 350M recipe has D = 64, its 1.3B ones D = 128):
    // the same FLOPs (B T^2 C), longer inner dimensions for the score products
    for (int64_t larger : opt.quick ? std::vector<int64_t>{} : std::vector<int64_t>{4, 2}) {
      Tensor lse_h = Tensor::empty({bsz, larger, t_len}, DType::F32);
      PairTiming t = forward_backward(qkv, larger, lse_h);
      rep.line("attention_fwdbwd_B8_T256_H" + std::to_string(larger) + "_D" + std::to_string(c / larger),
               gflops(6 * mm, t.seconds_b), "GFLOP/s", 6 * mm / sgemm_flops * t.ratio_a_over_b,
               "ratio to sgemm_raw, interleaved; as above, larger heads");
    }
    // bf16 qkv (precision: bf16) on each of the CPU's bf16 paths (runtime/cpu/attention_tile_gemm.h)
    std::vector<std::pair<cpu::attn::Bf16Path, const char*>> paths = {{cpu::attn::Bf16Path::Widened, "widened"}};
    if (cpu::attn::bf16_units()) paths.push_back({cpu::attn::Bf16Path::Dot, "dot"});
    if (cpu::attn::amx_units()) paths.push_back({cpu::attn::Bf16Path::Amx, "amx"});
    Tensor qkv16 = qkv.to(DType::BF16);
    for (const auto& [path, name] : paths) {
      cpu::attn::set_bf16_path(path);
      PairTiming t = forward_backward(qkv16, heads, lse);
      rep.line(std::string("attention_fwdbwd_bf16_") + name + "_B8_T256_H8_D32", gflops(6 * mm, t.seconds_b), "GFLOP/s",
               6 * mm / sgemm_flops * t.ratio_a_over_b,
               std::string("ratio to sgemm_raw, interleaved; bf16 qkv on ") + cpu::attn::bf16_path_units(path));
    }
    cpu::attn::reset_bf16_path();
  }

  // --- memory-bound kernels ---------------------------------------------------------------------
  if (wanted("elementwise")) {
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
  if (wanted("embedding")) {
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
  if (wanted("cross_entropy")) {
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
