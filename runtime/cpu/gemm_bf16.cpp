#include "runtime/cpu/gemm_bf16.h"

#include <cstdlib>
#include <list>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

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

// From this inner dimension on, b [K,N] is first packed (a oneDNN reorder into the layout its
// kernel reads, one pass over b) instead of oneDNN re-packing b's panels for every block of rows of
// a: the logits' backward dx [T,C] = dlogits [T,V] wte [V,C] (K = V = 50304) gains 13-17% on AMX.
// A reorder is a copy: the numbers do not change.
constexpr int64_t kPackBFromK = 16384;

// One matmul primitive per layout (shapes, strides, transposes, alpha, beta), made once.
struct Key {
  int64_t batch_a, batch_b, batch, m, n, k, stride_a, stride_b, stride_c;
  bool ta, tb;
  double alpha, beta;
  bool f32_operands = false;  // a and b f32 (else bf16)
  bool bias = false;          // + an f32 bias [N] in every row of c
  auto tie() const {
    return std::tie(batch_a, batch_b, batch, m, n, k, stride_a, stride_b, stride_c, ta, tb, alpha, beta, f32_operands,
                    bias);
  }
  bool operator<(const Key& o) const { return tie() < o.tie(); }
};

struct Cached {
  dnnl::memory::desc a, b, c, bias;
  dnnl::matmul prim;
  dnnl::reorder pack_b;   // b -> packed_b, where the layout packs b first (kPackBFromK)
  dnnl::memory packed_b;  // b in the primitive's own layout, reused by every call
};

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// [batch, rows, cols] with the row and column strides of a row-major matrix stored as
// [rows, cols] (`trans` false) or as [cols, rows] (`trans` true), and `stride` between batches;
// [rows, cols] where the whole GEMM is one problem (`batched` false: oneDNN then may pick a packed
// layout for a format_tag::any operand, which it does not for 3-D ones).
dnnl::memory::desc matrix_desc(bool batched, int64_t batch, int64_t rows, int64_t cols, bool trans, int64_t stride,
                               dnnl::memory::data_type dt) {
  dnnl::memory::dims row_col = trans ? dnnl::memory::dims{1, rows} : dnnl::memory::dims{cols, 1};
  if (!batched) return dnnl::memory::desc({rows, cols}, dt, row_col);
  if (batch == 1) stride = rows * cols;  // any value: one batch
  return dnnl::memory::desc({batch, rows, cols}, dt, {stride, row_col[0], row_col[1]});
}

// The primitives of the most recently used layouts. Bounded: a dropless MoE layer gives its experts
// new row counts every step, and each layout holds JIT code; creating one costs ~0.5 ms (measured
// 0.35-0.6 ms on AMX), so the least recently used is dropped past kCachedLayouts.
constexpr size_t kCachedLayouts = 1024;

const Cached& primitive_for(const Key& key) {
  static std::list<std::pair<Key, Cached>> recent;  // most recently used first
  static std::map<Key, std::list<std::pair<Key, Cached>>::iterator> index;
  auto hit = index.find(key);
  if (hit != index.end()) {
    recent.splice(recent.begin(), recent, hit->second);
    return hit->second->second;
  }
  using dt = dnnl::memory::data_type;
  Cached c;
  bool batched = key.batch > 1;
  dt operands = key.f32_operands ? dt::f32 : dt::bf16;
  c.a = matrix_desc(batched, key.batch_a, key.m, key.k, key.ta, key.stride_a, operands);
  c.b = matrix_desc(batched, key.batch_b, key.k, key.n, key.tb, key.stride_b, operands);
  c.c = matrix_desc(batched, key.batch, key.m, key.n, false, key.stride_c, dt::f32);
  if (key.bias) c.bias = dnnl::memory::desc({1, key.n}, dt::f32, dnnl::memory::dims{key.n, 1});
  dnnl::primitive_attr attr;
  if (key.alpha != 1.0) attr.set_output_scales(0, {float(key.alpha)});
  if (key.beta != 0.0) {
    dnnl::post_ops ops;
    ops.append_sum(float(key.beta));
    attr.set_post_ops(ops);
  }
  bool pack = key.k >= kPackBFromK && !batched;
  dnnl::memory::desc b_kernel = pack ? dnnl::memory::desc(c.b.dims(), operands, dnnl::memory::format_tag::any) : c.b;
  dnnl::matmul::primitive_desc pd(
      key.bias ? dnnl::matmul::desc(c.a, b_kernel, c.bias, c.c) : dnnl::matmul::desc(c.a, b_kernel, c.c), attr,
      cpu_engine());
  c.prim = dnnl::matmul(pd);
  if (pack && pd.weights_desc() != c.b) {
    c.packed_b = dnnl::memory(pd.weights_desc(), cpu_engine());
    c.pack_b = dnnl::reorder(dnnl::memory(c.b, cpu_engine(), DNNL_MEMORY_NONE), c.packed_b);
  }
  recent.emplace_front(key, std::move(c));
  index[key] = recent.begin();
  if (recent.size() > kCachedLayouts) {
    index.erase(recent.back().first);
    recent.pop_back();
  }
  return recent.front().second;
}
#endif

void choose_path_once() {
  if (g_chosen) return;
  g_chosen = true;
  const char* forced = std::getenv("MOETRAIN_BF16_GEMM");
  std::string f = forced ? forced : "";
  MT_CHECK(f.empty() || f == "widened" || f == "onednn", "MOETRAIN_BF16_GEMM must be widened or onednn, got '", f, "'");
#if MOETRAIN_HAVE_DNNL
  bool units = bf16_units() != Bf16Units::None;
  g_path = f == "widened"           ? Bf16GemmPath::Widened
           : f == "onednn" || units ? Bf16GemmPath::OneDnn
                                    : Bf16GemmPath::Widened;
#else
  MT_CHECK(f != "onednn", "MOETRAIN_BF16_GEMM=onednn: this build has no oneDNN (install libdnnl-dev and rebuild)");
  g_path = Bf16GemmPath::Widened;
#endif
}

}  // namespace

Bf16Units bf16_units() {
#if MOETRAIN_HAVE_DNNL
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_amx:
      return Bf16Units::Amx;
    case dnnl::cpu_isa::avx512_core_bf16:
      return Bf16Units::Avx512Bf16;
    default:
      return Bf16Units::None;
  }
#else
  return Bf16Units::None;
#endif
}

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

namespace {

#if MOETRAIN_HAVE_DNNL
// c = alpha op(a) op(b) + beta c (+ bias in every row) on the cached primitive of its layout.
void run_matmul(const GemmDesc& g, double alpha, const Tensor& a, const Tensor& b, double beta, const Tensor* bias,
                Tensor& c) {
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
          beta,
          a.dtype() == DType::F32,
          bias != nullptr};
  std::lock_guard<std::mutex> lock(g_mutex);
  const Cached& p = primitive_for(key);
  dnnl::engine& eng = cpu_engine();
  dnnl::memory ma(p.a, eng, const_cast<void*>(a.raw())), mb(p.b, eng, const_cast<void*>(b.raw())),
      mc(p.c, eng, c.raw());
  static dnnl::stream stream(eng);
  if (p.packed_b) {  // b into the kernel's layout first (a handle copy: the cached buffer)
    dnnl::memory packed = p.packed_b;
    p.pack_b.execute(stream, mb, packed);
    mb = packed;
  }
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
  if (bias) args[DNNL_ARG_BIAS] = dnnl::memory(p.bias, eng, const_cast<void*>(bias->raw()));
  p.prim.execute(stream, args);
  stream.wait();
}
#endif

bool g_f32_bias_onednn = true;
constexpr int64_t kF32RowMultiple = 64;

}  // namespace

bool onednn_bf16_gemm(const GemmDesc& g, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c) {
#if MOETRAIN_HAVE_DNNL
  run_matmul(g, alpha, a, b, beta, nullptr, c);
  return true;
#else
  (void)g, (void)alpha, (void)a, (void)b, (void)beta, (void)c;
  return false;
#endif
}

bool onednn_gemm_bias(const GemmDesc& g, const Tensor& a, const Tensor& b, const Tensor& bias, Tensor& c) {
#if MOETRAIN_HAVE_DNNL
  // f32 only for row counts that are multiples of kF32RowMultiple: a dense layer's tokens. An MoE
  // expert's block changes its row count with the routing, and every new count would build (JIT)
  // and cache a primitive: 0.2-0.3 ms each, and without capacity up to one per token count; those
  // keep OpenBLAS (the path is a function of the shape alone: the same bits on every run).
  bool f32 = a.dtype() == DType::F32 && c.dtype() == DType::F32 && g_f32_bias_onednn && g.m % kF32RowMultiple == 0;
  bool bf16 = a.dtype() == DType::BF16 && bf16_gemm_path() == Bf16GemmPath::OneDnn;
  if (g.batch != 1 || g.k == 0 || !(f32 || bf16)) return false;
  run_matmul(g, 1.0, a, b, 0.0, &bias, c);
  return true;
#else
  (void)g, (void)a, (void)b, (void)bias, (void)c;
  return false;
#endif
}

void set_f32_gemm_bias_onednn(bool on) {
  g_f32_bias_onednn = on;
}

std::function<void()> raw_bf16_matmul(const Tensor& a, const Tensor& b, Tensor& c) {
#if MOETRAIN_HAVE_DNNL
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  int64_t m = c.size(0), n = c.size(1), k = a.size(1);
  dnnl::engine& eng = cpu_engine();
  dnnl::memory ma({{m, k}, dt::bf16, tag::ab}, eng, const_cast<void*>(a.raw()));
  dnnl::memory mb({{k, n}, dt::bf16, tag::ab}, eng, const_cast<void*>(b.raw()));
  dnnl::memory mc({{m, n}, dt::f32, tag::ab}, eng, c.raw());
  dnnl::matmul prim(dnnl::matmul::primitive_desc(dnnl::matmul::desc(ma.get_desc(), mb.get_desc(), mc.get_desc()), eng));
  return [prim, ma, mb, mc, stream = dnnl::stream(eng)]() mutable {
    prim.execute(stream, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    stream.wait();
  };
#else
  (void)a, (void)b, (void)c;
  return {};
#endif
}

}  // namespace mt::cpu
