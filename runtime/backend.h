// The kernel table. One Backend per device type implements every kernel; runtime/ops.h checks
// shapes and dtypes once, then calls backend_for(device). A CPU-only build links with just the
// CPU backend; the CUDA backend registers itself with register_backend().
//
// Conventions for every kernel:
//   * tensors are contiguous, already checked by runtime/ops.cpp (shapes, dtypes, devices);
//   * float kernels run in f32 and f64 (T below), index tensors are i32 or i64;
//   * backward kernels ACCUMULATE into their gradient outputs (dx += ...), as llm.c does, so a
//     tensor used twice in the forward gets the sum of both contributions for free.
#pragma once

#include <vector>

#include "runtime/rng.h"
#include "runtime/tensor.h"

namespace mt {

enum class BinaryOp { Add, Sub, Mul, Div };
enum class ReduceOp { Sum, SumSquares, Max, AbsMax };

// C[i] = alpha * op(A[i]) * op(B[i]) + beta * C[i] for i < batch, op = transpose or not.
// op(A[i]) is [M,K], op(B[i]) is [K,N], C[i] is [M,N]; strides in elements (0 = broadcast).
struct GemmDesc {
  bool trans_a = false, trans_b = false;
  int64_t batch = 1, m = 0, n = 0, k = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
};

// One AdamW update (decoupled weight decay, as apex/Megatron's adam_w_mode):
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  w -= lr (m/c1 / (sqrt(v/c2) + eps) + wd w)
// with c1 = 1 - b1^t, c2 = 1 - b2^t the bias corrections of step t.
struct AdamWArgs {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, correction1 = 1, correction2 = 1;
};

// Attention dropout: probability p, the masks' stream, and where the op's heads sit among a
// sample's heads: a tensor-parallel rank holds heads [first_head, first_head + n_head) of
// total_heads (0: n_head, all of them), and each head keeps the mask it has in the whole model.
struct AttentionDropout {
  double p = 0.0;
  RngKey key;
  int64_t first_head = 0, total_heads = 0;
};

// A vocabulary shard: an embedding table or logits holding vocabulary rows [start, start + V)
// of `total` (tensor parallelism splits the vocabulary). total 0: the whole vocabulary, V. Ids
// must lie in [0, total); an id outside the shard has no row here (no embedding, no target logit).
struct VocabShard {
  int64_t start = 0, total = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // The device's dense peak in TFLOP/s for GEMMs whose operands are `compute` (bf16/f16: tensor
  // cores; f32 without TF32), for the MFU in the training log; 0 when unknown (the CPU).
  virtual double peak_tflops(DType compute) const {
    (void)compute;
    return 0.0;
  }

  // --- memory -------------------------------------------------------------------------------
  virtual void fill(Tensor& x, double value) = 0;
  virtual void copy(const Tensor& src, Tensor& dst) = 0;  // converts dtype; same numel

  // --- GEMM ---------------------------------------------------------------------------------
  virtual void gemm(const GemmDesc& g, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c) = 0;

  // --- elementwise and reductions ------------------------------------------------------------
  virtual void axpby(double alpha, const Tensor& x, double beta, Tensor& y) = 0;  // y = αx + βy
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) = 0;
  virtual void reduce(ReduceOp op, const Tensor& x, Tensor& out) = 0;    // out: one element
  virtual void sum_rows(const Tensor& x, double beta, Tensor& out) = 0;  // x [N,C] -> out [C]

  // --- neural-network kernels (forward and backward side by side in runtime/<backend>/) -------
  virtual void gelu_forward(const Tensor& x, Tensor& y) = 0;
  virtual void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) = 0;

  virtual void layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y, Tensor& mean,
                                 Tensor& rstd) = 0;
  virtual void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean,
                                  const Tensor& rstd, Tensor* dx, Tensor* dw, Tensor* db) = 0;

  virtual void softmax_forward(const Tensor& x, Tensor& y) = 0;
  virtual void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) = 0;

  virtual void attention_forward(const Tensor& qkv, int64_t n_head, const AttentionDropout& dropout, Tensor& out,
                                 Tensor& lse) = 0;
  virtual void attention_backward(const Tensor& dout, const Tensor& qkv, const Tensor& out, const Tensor& lse,
                                  int64_t n_head, const AttentionDropout& dropout, Tensor& dqkv) = 0;

  virtual void embedding_forward(const Tensor& idx, const Tensor* wte, const Tensor* wpe, const VocabShard& shard,
                                 Tensor& out) = 0;
  virtual void embedding_backward(const Tensor& dout, const Tensor& idx, const VocabShard& shard, Tensor* dwte,
                                  Tensor* dwpe) = 0;

  virtual void dropout_forward(const Tensor& x, double p, RngKey key, Tensor& y) = 0;
  virtual void dropout_backward(const Tensor& dy, double p, RngKey key, Tensor& dx) = 0;

  virtual void adamw_step(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, const AdamWArgs& a) = 0;

  virtual void cross_entropy_forward(const Tensor& logits, const Tensor& targets, const VocabShard& shard, Tensor& lse,
                                     Tensor& target_logits) = 0;
  virtual void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const VocabShard& shard,
                                      const Tensor& lse, const Tensor& dlosses, Tensor& dlogits) = 0;

  // --- row gathers (MoE dispatch, combine, residual mixing) ----------------------------------
  // Index tensors are i64, -1 meaning "no row"; an undefined index (nullptr) is the identity.
  // A row's weight w_i is 1 without weights, weights[i] for weights [N], weights[i, col] for
  // [N, m]. Every output row is written by one worker (a CPU thread, a CUDA block) from its
  // sources in a fixed order: deterministic.
  //   gather_rows   dst [N,h]: dst[i] = (accumulate ? dst[i] : 0) + w_i src[index[i]]
  //   combine_rows  dst [S,h]: dst[t] = (accumulate ? dst[t] : 0) + sum_{j<k} w_{t,j} src[index[t,j]],
  //                 index [S,k] (weights [S,k] or none)
  //   row_dots      out[p] (+)= <a[ia[p]], b[ib[p]]> (accumulates; out [P] or [P,m] at column col)
  virtual void gather_rows(const Tensor& src, const Tensor* index, const Tensor* weights, int64_t col, bool accumulate,
                           Tensor& dst) = 0;
  virtual void combine_rows(const Tensor& src, const Tensor& index, const Tensor* weights, bool accumulate,
                            Tensor& dst) = 0;
  virtual void row_dots(const Tensor& a, const Tensor* ia, const Tensor& b, const Tensor* ib, int64_t col,
                        Tensor& out) = 0;

  virtual void scaled_logsumexp(const Tensor& x, double scale, Tensor& lse) = 0;
  virtual void kd_cross_term(const Tensor& a, const Tensor& b, double scale, const Tensor& lse_b, Tensor& out) = 0;
  virtual void kd_backward(const Tensor& a, const Tensor& b, double scale, const Tensor& lse_a, const Tensor& lse_b,
                           const Tensor& dkl, Tensor& da) = 0;
};

Backend& backend_for(Device device);
void register_backend(DeviceType type, Backend* backend);

}  // namespace mt
