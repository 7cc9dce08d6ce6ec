// The checked kernel API: every function validates shapes, dtypes and devices (an mt::Error
// names the op and every argument's dtype and shape), then runs the kernel of the tensors'
// backend. Shapes below: B batch, T sequence, C channels, H heads, N rows, V vocabulary.
// Backward functions accumulate into their gradient outputs (see runtime/backend.h).
#pragma once

#include <vector>

#include "runtime/backend.h"
#include "runtime/tensor.h"

namespace mt::ops {

// c = alpha * op(a) @ op(b) + beta * c. a, b, c are 2-D, or 3-D [batch, ., .] (a 2-D operand
// is shared by every batch entry). With trans_a, a holds [K,M]; with trans_b, b holds [N,K].
// All f32 or all f64; or mixed precision: a and b bf16 (or f16), c f32, f32 accumulation.
void matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, Tensor& c, double alpha = 1.0,
            double beta = 0.0);
Tensor matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b);
// c [M,N] = op(a) op(b) + bias [N] in every row (2-D; a linear layer's forward: the CPU adds the
// bias in oneDNN's GEMM where built with it, no pass of its own; else bias rows, then beta 1).
void matmul_bias(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& bias, Tensor& c);
// Whether matmul on `device` widens half-precision operands of this dtype to f32 (exactly) before
// it multiplies: a CPU without bf16 units, f16 on the CPU. Rounded operands are then better held
// in f32 from the start (rounded_operand_dtype: the GEMM gets the same f32 values, no widening).
bool gemm_widens(DType operands, Device device);
// The dtype a GEMM operand rounded to `lo` is kept in on `device`: lo itself, or f32 (holding
// lo's values) where matmul widens lo anyway (gemm_widens): the GEMMs then read it as it is.
DType rounded_operand_dtype(DType lo, Device device);
// x (f32) rounded to `lo` (bf16/f16), as a tensor of rounded_operand_dtype(lo, x's device);
// round_operand_into writes it into dst of that dtype (a buffer kept between calls).
Tensor round_operand(const Tensor& x, DType lo);
void round_operand_into(const Tensor& x, DType lo, Tensor& dst);
// dst (f32) = x (f32) rounded to lo and widened back, one pass where the backend can; dst may be x.
void round_through(const Tensor& x, DType lo, Tensor& dst);

void axpby(double alpha, const Tensor& x, double beta, Tensor& y);  // y = alpha*x + beta*y
void add_(Tensor& y, const Tensor& x, double alpha = 1.0);          // y += alpha*x
void scale_(Tensor& y, double alpha);                               // y *= alpha
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);       // same shapes
double reduce(ReduceOp op, const Tensor& x);                        // to the host
void sum_rows(const Tensor& x, Tensor& out, double beta = 0.0);     // x [N,C] -> out [C]

// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), Megatron's GELU.
void gelu_forward(const Tensor& x, Tensor& y);
void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx, bool accumulate = true);  // dx (+)= gelu'(x) dy

// x [N,C], w [C], b [C] -> y [N,C]; mean [N], rstd [N] kept for the backward.
void layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y, Tensor& mean,
                       Tensor& rstd);
void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                        Tensor* dx, Tensor* dw, Tensor* db);

// Softmax over the last dimension: x [N,C] -> y [N,C]. A row that is entirely -inf gives NaN
// (as PyTorch does): there is no distribution to normalise.
void softmax_forward(const Tensor& x, Tensor& y);
void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx);

// Causal self-attention on packed projections: qkv [B,T,3C] (q | k | v, heads of C/H contiguous
// inside each) -> out [B,T,C]; lse [B,H,T] (log-sum-exp of each score row) for the backward,
// which recomputes the probabilities instead of storing [T,T] per head. With dropout_p > 0 the
// probabilities are dropped (Megatron's attention dropout) with the mask of element
// ((b*H' + h' )*T + t)*T + s of the key's stream, regenerated in the backward, where h' = first_head
// + h is the head's index among the sample's H' = total_heads (tensor parallelism holds a slice of
// the heads; the masks stay those of the whole model). qkv may be bf16 (precision: bf16) with
// f32 out, lse, dout and dqkv: the products take bf16 operands (P and dS rounded too), the
// softmax and accumulation stay f32 (runtime/cpu/attention.cpp).
void attention_forward(const Tensor& qkv, int64_t n_head, Tensor& out, Tensor& lse,
                       const AttentionDropout& dropout = {});
void attention_backward(const Tensor& dout, const Tensor& qkv, const Tensor& out, const Tensor& lse, int64_t n_head,
                        Tensor& dqkv, const AttentionDropout& dropout = {}, bool accumulate = true);

// idx [B,T] (i32/i64), wte [V,C], wpe [P,C] with P >= T -> out [B,T,C] = wte[idx] + wpe[t].
// Either table may be undefined (its term is 0); with a vocabulary shard wte holds rows
// [start, start + V) and other ids get no word row (runtime/backend.h, VocabShard).
void embedding_forward(const Tensor& idx, const Tensor& wte, const Tensor& wpe, Tensor& out,
                       const VocabShard& shard = {});
void embedding_backward(const Tensor& dout, const Tensor& idx, Tensor* dwte, Tensor* dwpe,
                        const VocabShard& shard = {});

// Inverted dropout: y = x * keep / (1-p), keep drawn from Philox(key) per element index.
void dropout_forward(const Tensor& x, double p, RngKey key, Tensor& y);
void dropout_backward(const Tensor& dy, double p, RngKey key, Tensor& dx);

// AdamW update of w with gradient g and moments m, v (all the same shape and dtype).
void adamw_step(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, const AdamWArgs& args);

// logits [N,V], targets [N] (i32/i64) -> lse [N], target_logits [N] = logits[n, target] (the loss
// is lse - target_logits). The backward recomputes softmax from lse: dlogits[n] += dlosses[n] *
// (softmax(logits[n]) - onehot). With a vocabulary shard (logits hold columns [start, start + V))
// a target elsewhere has target logit 0 and no onehot; lse is then the whole row's (given).
// accumulate false: dlogits = instead of += (dlogits may be uninitialised: one pass over it).
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& lse, Tensor& target_logits,
                           const VocabShard& shard = {});
// round_to bf16/f16 (accumulate false, an f32 dlogits): every entry rounded to it, kept in f32.
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& dlosses,
                            Tensor& dlogits, const VocabShard& shard = {}, bool accumulate = true,
                            DType round_to = DType::F32);
// The forward and the backward in one pass over the logits, when dlosses is known before the
// backward (the whole vocabulary): the same lse, target_logits and dlogits (written; f32, or
// bf16/f16 for f32 logits) as cross_entropy_forward then cross_entropy_backward. dlogits may be
// the logits tensor itself (same dtype): the gradient is then written over the logits.
// round_to bf16/f16 with an f32 dlogits: every entry rounded to it and kept in f32 (the operand
// of a GEMM that widens 16-bit operands: rounded_operand_dtype F32).
void cross_entropy_fused(const Tensor& logits, const Tensor& targets, const Tensor& dlosses, Tensor& lse,
                         Tensor& target_logits, Tensor& dlogits, DType round_to = DType::F32);

// Knowledge distillation (runtime/cpu/distillation.cpp): a, b [N,V] student and teacher logits,
// scale = 1/T. lse [N] = logsumexp(scale x); out [N] = sum_v softmax(scale b)_v * scale (b - a)
// given b's lse; da [N,V] += dkl[n] * scale * (softmax(scale a) - softmax(scale b)).
void scaled_logsumexp(const Tensor& x, double scale, Tensor& lse);

// MoE row gathers (runtime/backend.h has the formulas). Index tensors i64 on the data's device,
// -1 = no row, nullptr = the identity; weights [N] or [N,m] (column col). Index values are
// range-checked when the index lives on the host.
void gather_rows(const Tensor& src, const Tensor* index, const Tensor* weights, int64_t col, bool accumulate,
                 Tensor& dst);
void combine_rows(const Tensor& src, const Tensor& index, const Tensor* weights, bool accumulate, Tensor& dst);
void row_dots(const Tensor& a, const Tensor* ia, const Tensor& b, const Tensor* ib, int64_t col, Tensor& out);
void kd_cross_term(const Tensor& a, const Tensor& b, double scale, const Tensor& lse_b, Tensor& out);
void kd_backward(const Tensor& a, const Tensor& b, double scale, const Tensor& lse_a, const Tensor& lse_b,
                 const Tensor& dkl, Tensor& da);

}  // namespace mt::ops
