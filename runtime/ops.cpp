#include "runtime/ops.h"

#include <algorithm>

#include "runtime/emulated_cuda.h"
#include "runtime/kernel_profile.h"
#include "runtime/op_check.h"

namespace mt::ops {
namespace {

// One backend (kernel) call: while it runs, device memory may be touched (runtime/emulated_cuda.h),
// and its time is profiled under `name` when the profile is on (runtime/kernel_profile.h).
class KernelCall {
 public:
  KernelCall(Backend& backend, const char* name, const std::string& detail) : timer_(name, detail), backend_(backend) {}
  Backend* operator->() const { return &backend_; }

 private:
  DeviceAccessScope scope_;
  kernel_profile::ScopedTimer timer_;
  Backend& backend_;
};

// The backend of t's device, for one call of kernel `name` (detail: a profile row qualifier).
KernelCall backend_of(const Tensor& t, const char* name, const std::string& detail = {}) {
  return KernelCall(backend_for(t.device()), name, detail);
}

bool same_shape(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape();
}

// [rows, cols] of a 2-D tensor or of each entry of a 3-D one.
std::pair<int64_t, int64_t> matrix_dims(const Tensor& t) {
  return {t.size(-2), t.size(-1)};
}

// GEMM operands: all f32 or all f64, or mixed precision: a and b both bf16 or both f16 with an f32
// c (products exact in f32, f32 accumulation: what tensor cores compute).
void check_gemm_dtypes(OpCheck& chk, const Tensor& a, const Tensor& b, const Tensor& c) {
  if (!is_half_precision(a.dtype()) && !is_half_precision(b.dtype())) {
    chk.same_float_dtype_and_device();
    return;
  }
  chk.require(a.dtype() == b.dtype() && c.dtype() == DType::F32,
              "mixed precision: a and b both bf16 or both f16, c f32");
  chk.require(a.device() == c.device() && b.device() == c.device(), "all arguments on one device");
  chk.require(!c.overlaps(a) && !c.overlaps(b), "output c not overlapping a or b in memory (no in-place use)");
}

}  // namespace

namespace {

// The GEMM c = op(a) op(b) of matmul's operands, checked (chk names the op).
GemmDesc gemm_desc(OpCheck& chk, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c) {
  chk.arg("a", a).arg("b", b).out("c", c);
  check_gemm_dtypes(chk, a, b, c);
  chk.require(a.dim() >= 2 && a.dim() <= 3 && b.dim() >= 2 && b.dim() <= 3 && c.dim() >= 2 && c.dim() <= 3,
              "2-D or 3-D (batched) operands");
  auto [ar, ac] = matrix_dims(a);
  auto [br, bc] = matrix_dims(b);
  int64_t m = trans_a ? ac : ar, k = trans_a ? ar : ac;
  int64_t kb = trans_b ? bc : br, n = trans_b ? br : bc;
  chk.require(k == kb, std::string("inner dimensions to agree (trans_a=") + (trans_a ? "1" : "0") +
                           ", trans_b=" + (trans_b ? "1" : "0") + ")");
  chk.require(c.size(-2) == m && c.size(-1) == n,
              "c of shape [M,N] = [" + std::to_string(m) + "," + std::to_string(n) + "]");
  int64_t batch = c.dim() == 3 ? c.size(0) : 1;
  chk.require((a.dim() == 2 || a.size(0) == batch) && (b.dim() == 2 || b.size(0) == batch) &&
                  (c.dim() == 3 || (a.dim() == 2 && b.dim() == 2)),
              "batched operands to share the batch size of c");
  constexpr int64_t kIntMax = 0x7fffffff;  // CBLAS takes int sizes and leading dimensions
  chk.require(std::max({m, n, k, a.size(-1), b.size(-1)}) <= kIntMax, "each matrix dimension below 2^31");
  GemmDesc g;
  g.trans_a = trans_a;
  g.trans_b = trans_b;
  g.batch = batch;
  g.m = m;
  g.n = n;
  g.k = k;
  g.stride_a = a.dim() == 3 ? ar * ac : 0;
  g.stride_b = b.dim() == 3 ? br * bc : 0;
  g.stride_c = m * n;
  return g;
}

}  // namespace

void matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, double alpha, double beta) {
  OpCheck chk("matmul");
  GemmDesc g = gemm_desc(chk, a, trans_a, b, trans_b, c);
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  backend_of(c, "gemm", kernel_profile::enabled() ? dtype_name(a.dtype()) : std::string())
      ->gemm(g, alpha, a, b, beta, c);
}

bool gemm_widens(DType operands, Device device) {
  return is_half_precision(operands) && backend_for(device).gemm_widens(operands);
}

DType rounded_operand_dtype(DType lo, Device device) {
  return gemm_widens(lo, device) ? DType::F32 : lo;
}

Tensor round_operand(const Tensor& x, DType lo) {
  Tensor held = Tensor::empty(x.shape(), rounded_operand_dtype(lo, x.device()), x.device());
  round_operand_into(x, lo, held);
  return held;
}

void round_operand_into(const Tensor& x, DType lo, Tensor& dst) {
  if (dst.dtype() == lo)
    dst.copy_from(x);  // (the conversion rounds)
  else
    round_through(x, lo, dst);
}

void round_through(const Tensor& x, DType lo, Tensor& dst) {
  OpCheck chk("round_through");
  chk.arg("x", x).arg("dst", dst);  // (dst may be x: each element read before it is written)
  chk.same_float_dtype_and_device();
  chk.require(is_half_precision(lo), std::string("a 16-bit lo (bf16 or f16), got ") + dtype_name(lo));
  chk.require(x.dtype() == DType::F32 && x.numel() == dst.numel(), "x and dst f32, of one numel");
  if (x.numel() == 0) return;
  backend_of(dst, "round_through", kernel_profile::enabled() ? std::string("f32->") + dtype_name(lo) : "")
      ->round_through(x, lo, dst);
}

void matmul_bias(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& bias, Tensor& c) {
  OpCheck chk("matmul_bias");
  GemmDesc g = gemm_desc(chk, a, trans_a, b, trans_b, c);
  chk.arg("bias", bias);
  chk.require(c.dim() == 2, "2-D operands (no batch)");
  chk.require(bias.dim() == 1 && bias.size(0) == g.n && bias.dtype() == c.dtype() && bias.device() == c.device(),
              "bias [N] = [" + std::to_string(g.n) + "] of c's dtype, on c's device");
  if (g.m == 0 || g.n == 0) return;
  backend_of(c, "gemm_bias", kernel_profile::enabled() ? dtype_name(a.dtype()) : std::string())
      ->gemm_bias(g, a, b, bias, c);
}

Tensor matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b) {
  MT_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: 2-D or 3-D operands; got a ", a.str(), ", b ", b.str());
  int64_t m = trans_a ? a.size(-1) : a.size(-2);
  int64_t n = trans_b ? b.size(-2) : b.size(-1);
  Shape shape{m, n};
  if (a.dim() == 3 || b.dim() == 3) shape.insert(shape.begin(), a.dim() == 3 ? a.size(0) : b.size(0));
  Tensor c = Tensor::empty(shape, is_half_precision(a.dtype()) ? DType::F32 : a.dtype(), a.device());
  matmul(a, trans_a, b, trans_b, c, 1.0, 0.0);
  return c;
}

void axpby(double alpha, const Tensor& x, double beta, Tensor& y) {
  OpCheck chk("axpby");
  chk.arg("x", x).arg("y", y).same_float_dtype_and_device();
  chk.require(x.numel() == y.numel(), "x and y with the same element count");
  backend_of(y, "axpby")->axpby(alpha, x, beta, y);
}

void add_(Tensor& y, const Tensor& x, double alpha) {
  axpby(alpha, x, 1.0, y);
}

void scale_(Tensor& y, double alpha) {
  axpby(0.0, y, alpha, y);
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  OpCheck chk("binary");
  chk.arg("a", a).arg("b", b).same_float_dtype_and_device();
  chk.require(same_shape(a, b), "a and b of the same shape");
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  backend_of(a, "binary")->binary(op, a, b, out);
  return out;
}

double reduce(ReduceOp op, const Tensor& x) {
  OpCheck chk("reduce");
  chk.arg("x", x).same_float_dtype_and_device();
  Tensor out = Tensor::empty({1}, x.dtype(), x.device());
  backend_of(x, "reduce")->reduce(op, x, out);
  return out.item();
}

void sum_rows(const Tensor& x, Tensor& out, double beta) {
  OpCheck chk("sum_rows");
  chk.arg("x", x).arg("out", out).same_float_dtype_and_device();
  chk.require(x.dim() >= 1 && out.numel() == x.size(-1), "x [N,C] and out [C]");
  backend_of(x, "sum_rows")->sum_rows(x.flatten_to_2d(), beta, out);
}

void gelu_forward(const Tensor& x, Tensor& y) {
  OpCheck chk("gelu");
  chk.arg("x", x).arg("y", y).same_float_dtype_and_device();
  chk.require(same_shape(x, y), "x and y of the same shape");
  backend_of(x, "gelu_forward")->gelu_forward(x, y);
}

void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx, bool accumulate) {
  OpCheck chk("gelu_backward");
  chk.arg("x", x).arg("dy", dy).arg("dx", dx).same_float_dtype_and_device();
  chk.require(same_shape(x, dy) && same_shape(x, dx), "x, dy and dx of the same shape");
  backend_of(x, "gelu_backward")->gelu_backward(x, dy, accumulate, dx);
}

void layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y, Tensor& mean,
                       Tensor& rstd) {
  OpCheck chk("layernorm");
  chk.arg("x", x).arg("weight", w).arg("bias", b).out("y", y).out("mean", mean).out("rstd", rstd);
  chk.require(x.defined() && x.dim() >= 1, "x of shape [..., C]");
  chk.same_float_dtype_and_device();
  int64_t c = x.size(-1), n = x.numel() / std::max<int64_t>(c, 1);
  chk.require(w.dim() == 1 && w.size(0) == c && b.dim() == 1 && b.size(0) == c,
              "weight and bias of shape [C] with C = x's last dimension");
  chk.require(same_shape(x, y) && mean.numel() == n && rstd.numel() == n, "y like x, mean and rstd with N rows");
  chk.require(eps > 0, "eps > 0");
  backend_of(x, "layernorm_forward")->layernorm_forward(x.flatten_to_2d(), w, b, eps, y, mean, rstd);
}

void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                        Tensor* dx, Tensor* dw, Tensor* db) {
  OpCheck chk("layernorm_backward");
  chk.arg("dy", dy).arg("x", x).arg("weight", w).arg("mean", mean).arg("rstd", rstd);
  chk.out("dx", dx).out("dweight", dw).out("dbias", db);
  chk.require(x.defined() && x.dim() >= 1, "x of shape [..., C]");
  chk.same_float_dtype_and_device();
  int64_t c = x.size(-1), n = x.numel() / std::max<int64_t>(c, 1);
  chk.require(same_shape(dy, x) && w.numel() == c && mean.numel() == n && rstd.numel() == n &&
                  (!dx || same_shape(*dx, x)) && (!dw || dw->numel() == c) && (!db || db->numel() == c),
              "dy and dx like x [N,C], weight/dweight/dbias [C], mean and rstd [N]");
  backend_of(x, "layernorm_backward")
      ->layernorm_backward(dy.flatten_to_2d(), x.flatten_to_2d(), w, mean, rstd, dx, dw, db);
}

void softmax_forward(const Tensor& x, Tensor& y) {
  OpCheck chk("softmax");
  chk.arg("x", x).arg("y", y).same_float_dtype_and_device();
  chk.require(x.dim() >= 1 && same_shape(x, y), "x [..., C] and y of the same shape");
  backend_of(x, "softmax_forward")->softmax_forward(x.flatten_to_2d(), y);
}

void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  OpCheck chk("softmax_backward");
  chk.arg("y", y).arg("dy", dy).arg("dx", dx).same_float_dtype_and_device();
  chk.require(y.dim() >= 1 && same_shape(y, dy) && same_shape(y, dx), "y, dy and dx of the same shape");
  backend_of(y, "softmax_backward")->softmax_backward(y.flatten_to_2d(), dy, dx);
}

namespace {
// qkv f32 or f64 with every other tensor alike; or bf16 qkv (precision: bf16: the kernel's GEMM
// operands in bf16) with f32 others: `others` then lists the inputs and `outs` the outputs besides qkv.
void check_attention(OpCheck& chk, const Tensor& qkv, int64_t n_head, std::initializer_list<const Tensor*> others,
                     std::initializer_list<const Tensor*> outs) {
  if (qkv.dtype() != DType::BF16) {
    chk.same_float_dtype_and_device();
  } else {
    bool ok = true;
    for (auto list : {others, outs})
      for (const Tensor* t : list) ok = ok && t->defined() && t->dtype() == DType::F32 && t->device() == qkv.device();
    chk.require(ok, "with a bf16 qkv, every other tensor f32 on qkv's device");
    for (const Tensor* o : outs)
      for (auto list : {others, outs})
        for (const Tensor* t : list) chk.require(o == t || !o->overlaps(*t), "outputs not overlapping the inputs");
    for (const Tensor* o : outs) chk.require(!o->overlaps(qkv), "outputs not overlapping the inputs");
  }
  chk.require(qkv.dim() == 3 && qkv.size(2) % 3 == 0, "qkv of shape [B,T,3C]");
  int64_t c = qkv.size(2) / 3;
  chk.require(n_head > 0 && c % n_head == 0,
              "n_head (" + std::to_string(n_head) + ") dividing C (" + std::to_string(c) + ")");
}
// The CPU kernels take a bf16 qkv (runtime/cpu/attention.cpp); the CUDA kernels take f32 and f64
// only, so a bf16 qkv on a real GPU widens (exactly) to f32 here: its P, dO and dS stay f32. The
// host-emulated device runs the CPU kernels, so it takes the bf16 qkv as the CPU does.
Tensor attention_operand(const Tensor& qkv) {
  bool widen = qkv.dtype() == DType::BF16 && qkv.device().is_cuda() && !cuda_emulated();
  return widen ? qkv.to(DType::F32) : qkv;
}
void check_attention_dropout(OpCheck& chk, const AttentionDropout& d, int64_t n_head) {
  chk.require(d.p >= 0.0 && d.p < 1.0, "an attention dropout probability in [0, 1)");
  chk.require(d.first_head >= 0 && (d.total_heads == 0 || d.first_head + n_head <= d.total_heads),
              "the heads [first_head, first_head + n_head) inside total_heads");
}
}  // namespace

void attention_forward(const Tensor& qkv, int64_t n_head, Tensor& out, Tensor& lse, const AttentionDropout& dropout) {
  OpCheck chk("attention");
  chk.arg("qkv", qkv).out("out", out).out("lse", lse);
  check_attention(chk, qkv, n_head, {}, {&out, &lse});
  int64_t b = qkv.size(0), t = qkv.size(1), c = qkv.size(2) / 3;
  chk.require(out.shape() == Shape{b, t, c} && lse.shape() == Shape{b, n_head, t}, "out [B,T,C] and lse [B,H,T]");
  check_attention_dropout(chk, dropout, n_head);
  backend_of(qkv, "attention_forward")->attention_forward(attention_operand(qkv), n_head, dropout, out, lse);
}

void attention_backward(const Tensor& dout, const Tensor& qkv, const Tensor& out, const Tensor& lse, int64_t n_head,
                        Tensor& dqkv, const AttentionDropout& dropout, bool accumulate) {
  OpCheck chk("attention_backward");
  chk.arg("dout", dout).arg("qkv", qkv).arg("out", out).arg("lse", lse).out("dqkv", dqkv);
  check_attention(chk, qkv, n_head, {&dout, &out, &lse}, {&dqkv});
  int64_t b = qkv.size(0), t = qkv.size(1), c = qkv.size(2) / 3;
  chk.require(dout.shape() == Shape{b, t, c} && same_shape(out, dout) && lse.shape() == Shape{b, n_head, t} &&
                  same_shape(dqkv, qkv),
              "dout and out [B,T,C], lse [B,H,T], dqkv like qkv [B,T,3C]");
  check_attention_dropout(chk, dropout, n_head);
  backend_of(qkv, "attention_backward")
      ->attention_backward(dout, attention_operand(qkv), out, lse, n_head, dropout, accumulate, dqkv);
}

namespace {
void check_vocab_shard(OpCheck& chk, const VocabShard& shard, int64_t rows) {
  chk.require(shard.start >= 0 && (shard.total == 0 ? shard.start == 0 : shard.start + rows <= shard.total),
              "a vocabulary shard [start, start + V) inside [0, total) (total 0: the whole vocabulary)");
}
}  // namespace

void embedding_forward(const Tensor& idx, const Tensor& wte, const Tensor& wpe, Tensor& out, const VocabShard& shard) {
  OpCheck chk("embedding");
  const Tensor* te = wte.defined() ? &wte : nullptr;
  const Tensor* pe = wpe.defined() ? &wpe : nullptr;
  chk.index_arg("idx", idx).arg("wte", te).arg("wpe", pe).out("out", out).same_float_dtype_and_device();
  chk.require(te || pe, "a word table wte or a position table wpe (or both)");
  chk.require(idx.dim() == 2 && out.dim() == 3 && out.shape() == Shape{idx.size(0), idx.size(1), out.size(2)},
              "idx [B,T] and out [B,T,C]");
  chk.require((!te || (wte.dim() == 2 && wte.size(1) == out.size(2))) &&
                  (!pe || (wpe.dim() == 2 && wpe.size(1) == out.size(2))),
              "wte [V,C] and wpe [P,C] with out's C");
  chk.require(!pe || wpe.size(0) >= idx.size(1), "as many positions in wpe as the sequence length T");
  if (te) check_vocab_shard(chk, shard, wte.size(0));
  backend_of(out, "embedding_forward")->embedding_forward(idx, te, pe, shard, out);
}

void embedding_backward(const Tensor& dout, const Tensor& idx, Tensor* dwte, Tensor* dwpe, const VocabShard& shard) {
  OpCheck chk("embedding_backward");
  chk.arg("dout", dout).index_arg("idx", idx).out("dwte", dwte).out("dwpe", dwpe).same_float_dtype_and_device();
  chk.require(idx.dim() == 2 && dout.dim() == 3 && dout.size(0) == idx.size(0) && dout.size(1) == idx.size(1),
              "dout [B,T,C] and idx [B,T]");
  chk.require((!dwte || (dwte->dim() == 2 && dwte->size(1) == dout.size(2))) &&
                  (!dwpe || (dwpe->dim() == 2 && dwpe->size(1) == dout.size(2) && dwpe->size(0) >= idx.size(1))),
              "dwte [V,C] and dwpe [P,C] with P >= T");
  if (dwte) check_vocab_shard(chk, shard, dwte->size(0));
  backend_of(dout, "embedding_backward")->embedding_backward(dout, idx, shard, dwte, dwpe);
}

void dropout_forward(const Tensor& x, double p, RngKey key, Tensor& y) {
  OpCheck chk("dropout");
  chk.arg("x", x).arg("y", y).same_float_dtype_and_device();
  chk.require(same_shape(x, y), "x and y of the same shape");
  chk.require(p >= 0.0 && p < 1.0, "a drop probability p in [0, 1), got " + std::to_string(p));
  backend_of(x, "dropout_forward")->dropout_forward(x, p, key, y);
}

void dropout_backward(const Tensor& dy, double p, RngKey key, Tensor& dx) {
  OpCheck chk("dropout_backward");
  chk.arg("dy", dy).arg("dx", dx).same_float_dtype_and_device();
  chk.require(same_shape(dy, dx) && p >= 0.0 && p < 1.0, "dy and dx of the same shape, p in [0, 1)");
  backend_of(dy, "dropout_backward")->dropout_backward(dy, p, key, dx);
}

void adamw_step(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, const AdamWArgs& args) {
  OpCheck chk("adamw_step");
  chk.arg("w", w).arg("g", g).arg("m", m).arg("v", v).same_float_dtype_and_device();
  chk.require(same_shape(w, g) && same_shape(w, m) && same_shape(w, v), "w, g, m and v of one shape");
  chk.require(args.correction1 > 0 && args.correction2 > 0 && args.eps > 0, "positive bias corrections and eps");
  backend_of(w, "adamw_step")->adamw_step(w, g, m, v, args);
}

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& lse, Tensor& target_logits,
                           const VocabShard& shard) {
  OpCheck chk("cross_entropy");
  chk.arg("logits", logits).index_arg("targets", targets).out("lse", lse).out("target_logits", target_logits);
  chk.require(logits.defined() && logits.dim() >= 2, "logits of shape [..., V]");
  chk.same_float_dtype_and_device();
  int64_t n = logits.dim() >= 1 ? logits.numel() / std::max<int64_t>(logits.size(-1), 1) : 0;
  chk.require(logits.dim() >= 2 && targets.numel() == n && lse.numel() == n && target_logits.numel() == n,
              "logits [..., V] with targets, lse and target_logits of one entry per row");
  check_vocab_shard(chk, shard, logits.size(-1));
  backend_of(logits, "cross_entropy_forward")
      ->cross_entropy_forward(logits.flatten_to_2d(), targets, shard, lse, target_logits);
}

namespace {
// The cross-entropy gradient's arguments (backward and fused). dlogits may be bf16/f16 when
// written (not accumulated) from f32 logits: the gradient rounded as it is stored, for a reader
// that multiplies it as a 16-bit GEMM operand.
// over_logits: dlogits may be the logits themselves (the same memory, shape and dtype: the fused
// kernel reads each entry before it writes it).
void check_cross_entropy_gradient(OpCheck& chk, const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                  const Tensor& dlosses, const Tensor& dlogits, bool accumulate, DType round_to,
                                  bool over_logits = false) {
  bool rounded = dlogits.defined() && is_half_precision(dlogits.dtype());
  bool in_place = over_logits && dlogits.defined() && logits.defined() && dlogits.same_storage(logits) &&
                  dlogits.address() == logits.address() && dlogits.shape() == logits.shape() &&
                  dlogits.dtype() == logits.dtype();
  chk.arg("logits", logits).index_arg("targets", targets).arg("lse", lse).arg("dlosses", dlosses);
  if (in_place)
    chk.arg("dlogits", dlogits);
  else if (!rounded)
    chk.out("dlogits", dlogits);
  chk.require(logits.defined() && logits.dim() >= 2, "logits of shape [..., V]");
  chk.same_float_dtype_and_device();
  if (rounded)
    chk.require(!accumulate && logits.dtype() == DType::F32 && dlogits.device() == logits.device(),
                "a bf16/f16 dlogits only written (accumulate false) from f32 logits on the same device");
  int64_t n = logits.numel() / std::max<int64_t>(logits.size(-1), 1);
  chk.require(same_shape(logits, dlogits) && targets.numel() == n && lse.numel() == n && dlosses.numel() == n,
              "dlogits like logits [N,V]; targets, lse and dlosses [N]");
  chk.require(
      round_to == DType::F32 || (is_half_precision(round_to) && !accumulate && dlogits.dtype() == DType::F32),
      std::string("round_to f32, or bf16/f16 with an f32 dlogits only written (got ") + dtype_name(round_to) + ")");
}
}  // namespace

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& dlosses,
                            Tensor& dlogits, const VocabShard& shard, bool accumulate, DType round_to) {
  OpCheck chk("cross_entropy_backward");
  check_cross_entropy_gradient(chk, logits, targets, lse, dlosses, dlogits, accumulate, round_to);
  check_vocab_shard(chk, shard, logits.size(-1));
  backend_of(logits, "cross_entropy_backward")
      ->cross_entropy_backward(logits.flatten_to_2d(), targets, shard, lse, dlosses, accumulate, dlogits, round_to);
}

void cross_entropy_fused(const Tensor& logits, const Tensor& targets, const Tensor& dlosses, Tensor& lse,
                         Tensor& target_logits, Tensor& dlogits, DType round_to) {
  OpCheck chk("cross_entropy_fused");
  check_cross_entropy_gradient(chk, logits, targets, lse, dlosses, dlogits, false, round_to, /*over_logits=*/true);
  chk.out("target_logits", target_logits);
  chk.require(target_logits.numel() == lse.numel() && target_logits.dtype() == logits.dtype(),
              "target_logits [N] like lse");
  backend_of(logits, "cross_entropy_fused")
      ->cross_entropy_fused(logits.flatten_to_2d(), targets, dlosses, lse, target_logits, dlogits, round_to);
}

namespace {
// x [N,V] (2-D or flattened), scale > 0, and one entry per row in each of `rows`.
void check_rows(OpCheck& chk, const Tensor& x, double scale, std::initializer_list<const Tensor*> rows) {
  chk.require(x.defined() && x.dim() >= 2, "logits of shape [..., V]");
  chk.require(scale > 0, "a positive scale (1 / temperature)");
  int64_t n = x.numel() / std::max<int64_t>(x.size(-1), 1);
  for (const Tensor* r : rows) chk.require(r->numel() == n, "one entry per row of the logits");
}
}  // namespace

namespace {
// An i64 row index of `count` entries whose values lie in [-1, rows) (checked on the host only).
void check_row_index(OpCheck& chk, const char* name, const Tensor* index, int64_t count, int64_t rows) {
  if (!index) {
    chk.require(count <= rows, std::string(name) + " undefined (the identity) over at least as many source rows");
    return;
  }
  chk.require(index->dtype() == DType::I64 && index->numel() == count,
              std::string(name) + " i64 with " + std::to_string(count) + " entries");
  if (!index->device().is_cpu()) return;
  const int64_t* p = index->data<int64_t>();
  for (int64_t i = 0; i < count; ++i)
    if (p[i] < -1 || p[i] >= rows)
      chk.fail(std::string(name) + " values in [-1, " + std::to_string(rows) + "); entry " + std::to_string(i) +
               " is " + std::to_string(p[i]));
}

// weights [n] or [n, m] with col < m
void check_row_weights(OpCheck& chk, const Tensor* w, int64_t n, int64_t col) {
  if (!w) return;
  chk.require((w->dim() == 1 && w->size(0) == n) || (w->dim() == 2 && w->size(0) == n && col >= 0 && col < w->size(1)),
              "weights [" + std::to_string(n) + "] or [" + std::to_string(n) + ", m] with column < m");
}
}  // namespace

void gather_rows(const Tensor& src, const Tensor* index, const Tensor* weights, int64_t col, bool accumulate,
                 Tensor& dst) {
  OpCheck chk("gather_rows");
  chk.arg("src", src).arg("weights", weights).out("dst", dst).same_float_dtype_and_device();
  chk.require(src.dim() == 2 && dst.dim() == 2 && src.size(1) == dst.size(1), "src [M,h] and dst [N,h]");
  if (index) chk.require(index->device() == dst.device(), "the index on the data's device");
  check_row_index(chk, "index", index, dst.size(0), src.size(0));
  check_row_weights(chk, weights, dst.size(0), col);
  backend_of(dst, "gather_rows")->gather_rows(src, index, weights, col, accumulate, dst);
}

void combine_rows(const Tensor& src, const Tensor& index, const Tensor* weights, bool accumulate, Tensor& dst) {
  OpCheck chk("combine_rows");
  chk.arg("src", src).arg("weights", weights).out("dst", dst).same_float_dtype_and_device();
  chk.require(src.dim() == 2 && dst.dim() == 2 && src.size(1) == dst.size(1) && index.dim() == 2 &&
                  index.size(0) == dst.size(0) && index.device() == dst.device(),
              "src [N,h], index [S,k] on the data's device, dst [S,h]");
  check_row_index(chk, "index", &index, index.numel(), src.size(0));
  if (weights) chk.require(weights->shape() == index.shape(), "weights shaped like the index [S,k]");
  backend_of(dst, "combine_rows")->combine_rows(src, index, weights, accumulate, dst);
}

void row_dots(const Tensor& a, const Tensor* ia, const Tensor& b, const Tensor* ib, int64_t col, Tensor& out) {
  OpCheck chk("row_dots");
  chk.arg("a", a).arg("b", b).out("out", out).same_float_dtype_and_device();
  chk.require(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1) &&
                  (out.dim() == 1 || (out.dim() == 2 && col >= 0 && col < out.size(1))),
              "a [*,h], b [*,h], out [P] or [P,m] with column < m");
  if (ia) chk.require(ia->device() == out.device(), "the indices on the data's device");
  if (ib) chk.require(ib->device() == out.device(), "the indices on the data's device");
  check_row_index(chk, "ia", ia, out.size(0), a.size(0));
  check_row_index(chk, "ib", ib, out.size(0), b.size(0));
  backend_of(out, "row_dots")->row_dots(a, ia, b, ib, col, out);
}

void scaled_logsumexp(const Tensor& x, double scale, Tensor& lse) {
  OpCheck chk("scaled_logsumexp");
  chk.arg("x", x).out("lse", lse).same_float_dtype_and_device();
  check_rows(chk, x, scale, {&lse});
  backend_of(x, "scaled_logsumexp")->scaled_logsumexp(x.flatten_to_2d(), scale, lse);
}

void kd_cross_term(const Tensor& a, const Tensor& b, double scale, const Tensor& lse_b, Tensor& out) {
  OpCheck chk("kd_cross_term");
  chk.arg("a", a).arg("b", b).arg("lse_b", lse_b).out("out", out).same_float_dtype_and_device();
  chk.require(same_shape(a, b), "student and teacher logits of one shape");
  check_rows(chk, a, scale, {&lse_b, &out});
  backend_of(a, "kd_cross_term")->kd_cross_term(a.flatten_to_2d(), b.flatten_to_2d(), scale, lse_b, out);
}

void kd_backward(const Tensor& a, const Tensor& b, double scale, const Tensor& lse_a, const Tensor& lse_b,
                 const Tensor& dkl, Tensor& da) {
  OpCheck chk("kd_backward");
  chk.arg("a", a).arg("b", b).arg("lse_a", lse_a).arg("lse_b", lse_b).arg("dkl", dkl).out("da", da);
  chk.same_float_dtype_and_device();
  chk.require(same_shape(a, b) && same_shape(a, da), "student logits, teacher logits and da of one shape");
  check_rows(chk, a, scale, {&lse_a, &lse_b, &dkl});
  Tensor da2 = da.flatten_to_2d();
  backend_of(a, "kd_backward")->kd_backward(a.flatten_to_2d(), b.flatten_to_2d(), scale, lse_a, lse_b, dkl, da2);
}

}  // namespace mt::ops

namespace mt {

void Backend::round_through(const Tensor& src, DType lo, Tensor& dst) {
  Tensor rounded = src.to(lo);
  dst.copy_from(rounded);
}

void gemm_bias_by_rows(Backend& backend, const GemmDesc& g, const Tensor& a, const Tensor& b, const Tensor& bias,
                       Tensor& c) {
  Tensor row_zero = Tensor::zeros({g.m}, DType::I64, c.device());
  backend.gather_rows(bias.reshape({1, g.n}), &row_zero, nullptr, 0, /*accumulate=*/false, c);
  backend.gemm(g, 1.0, a, b, 1.0, c);
}

}  // namespace mt
