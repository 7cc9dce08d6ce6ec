#include "runtime/cpu/gemm_bf16.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>

#include "runtime/error.h"

#if MOETRAIN_HAVE_DNNL
#include "oneapi/dnnl/dnnl.hpp"
#endif

namespace mt::cpu {
namespace {

std::mutex g_mutex;
bool g_chosen = false;
Bf16GemmPath g_path = Bf16GemmPath::Widened;

#if MOETRAIN_HAVE_DNNL
std::string isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx (AMX tiles)";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16 (AVX512-BF16)";
    default:
      return "an ISA without bf16 units (oneDNN emulates bf16)";
  }
}

// One matmul primitive per layout (shapes, strides, transposes, alpha, beta), made once.
struct Key {
  int64_t batch_a, batch_b, batch, m, n, k, stride_a, stride_b, stride_c;
  bool ta, tb;
  double alpha, beta;
  auto tie() const {
    return std::tie(batch_a, batch_b, batch, m, n, k, stride_a, stride_b, stride_c, ta, tb, alpha, beta);
  }
  bool operator<(const Key& o) const { return tie() < o.tie(); }
};

struct Cached {
  dnnl::memory::desc a, b, c;
  dnnl::matmul prim;
};

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// [batch, rows, cols] with the row and column strides of a row-major matrix stored as
// [rows, cols] (`trans` false) or as [cols, rows] (`trans` true), and `stride` between batches.
dnnl::memory::desc matrix_desc(int64_t batch, int64_t rows, int64_t cols, bool trans, int64_t stride,
                               dnnl::memory::data_type dt) {
  dnnl::memory::dims dims = {batch, rows, cols};
  dnnl::memory::dims strides = trans ? dnnl::memory::dims{stride, 1, rows} : dnnl::memory::dims{stride, cols, 1};
  if (batch == 1) strides[0] = rows * cols;  // any value: one batch
  return dnnl::memory::desc(dims, dt, strides);
}

const Cached& primitive_for(const Key& key) {
  static std::map<Key, Cached> cache;
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  using dt = dnnl::memory::data_type;
  Cached c;
  c.a = matrix_desc(key.batch_a, key.m, key.k, key.ta, key.stride_a, dt::bf16);
  c.b = matrix_desc(key.batch_b, key.k, key.n, key.tb, key.stride_b, dt::bf16);
  c.c = matrix_desc(key.batch, key.m, key.n, false, key.stride_c, dt::f32);
  dnnl::primitive_attr attr;
  if (key.alpha != 1.0) attr.set_output_scales(0, {float(key.alpha)});
  if (key.beta != 0.0) {
    dnnl::post_ops ops;
    ops.append_sum(float(key.beta));
    attr.set_post_ops(ops);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(c.a, c.b, c.c), attr, cpu_engine());
  c.prim = dnnl::matmul(pd);
  return cache.emplace(key, std::move(c)).first->second;
}
#endif

void choose_path_once() {
  if (g_chosen) return;
  g_chosen = true;
  const char* forced = std::getenv("MOETRAIN_BF16_GEMM");
  std::string f = forced ? forced : "";
  MT_CHECK(f.empty() || f == "widened" || f == "onednn", "MOETRAIN_BF16_GEMM must be widened or onednn, got '", f, "'");
#if MOETRAIN_HAVE_DNNL
  bool units = dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_bf16 ||
               dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_amx;
  g_path = f == "widened"           ? Bf16GemmPath::Widened
           : f == "onednn" || units ? Bf16GemmPath::OneDnn
                                    : Bf16GemmPath::Widened;
#else
  MT_CHECK(f != "onednn", "MOETRAIN_BF16_GEMM=onednn: this build has no oneDNN (install libdnnl-dev and rebuild)");
  g_path = Bf16GemmPath::Widened;
#endif
}

}  // namespace

Bf16GemmPath bf16_gemm_path() {
  std::lock_guard<std::mutex> lock(g_mutex);
  choose_path_once();
  return g_path;
}

void set_bf16_gemm_path(Bf16GemmPath path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_chosen = true;
  g_path = path;
}

std::string bf16_gemm_description() {
  Bf16GemmPath path = bf16_gemm_path();
#if MOETRAIN_HAVE_DNNL
  const dnnl_version_t* v = dnnl_version();
  std::string lib =
      "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  if (path == Bf16GemmPath::OneDnn) return lib + " matmul on " + isa_name(dnnl::get_effective_cpu_isa());
  return "widened to f32 for SGEMM (" + lib + " found no bf16 units on this CPU, or MOETRAIN_BF16_GEMM=widened)";
#else
  (void)path;
  return "widened to f32 for SGEMM (built without oneDNN)";
#endif
}

bool onednn_bf16_gemm(const GemmDesc& g, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c) {
#if MOETRAIN_HAVE_DNNL
  Key key{g.stride_a == 0 ? 1 : g.batch,
          g.stride_b == 0 ? 1 : g.batch,
          g.batch,
          g.m,
          g.n,
          g.k,
          g.stride_a,
          g.stride_b,
          g.stride_c,
          g.trans_a,
          g.trans_b,
          alpha,
          beta};
  std::lock_guard<std::mutex> lock(g_mutex);
  const Cached& p = primitive_for(key);
  dnnl::engine& eng = cpu_engine();
  dnnl::memory ma(p.a, eng, const_cast<void*>(a.raw())), mb(p.b, eng, const_cast<void*>(b.raw())),
      mc(p.c, eng, c.raw());
  static dnnl::stream stream(eng);
  p.prim.execute(stream, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
  stream.wait();
  return true;
#else
  (void)g, (void)alpha, (void)a, (void)b, (void)beta, (void)c;
  return false;
#endif
}

}  // namespace mt::cpu
