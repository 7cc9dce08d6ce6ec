// The CPU backend: CBLAS for GEMM, OpenMP loops for the rest. Each kernel family lives in its
// own file (gemm.cpp, elementwise.cpp, layernorm.cpp, ...), forward and backward side by side.
#pragma once

#include "runtime/backend.h"

namespace mt::cpu {

class CpuBackend : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  void fill(Tensor& x, double value) override;
  void copy(const Tensor& src, Tensor& dst) override;
  // The copy between any two tensors in host memory (converting dtypes).
  static void copy_host_memory(const Tensor& src, Tensor& dst);

  void gemm(const GemmDesc& g, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c) override;

  void axpby(double alpha, const Tensor& x, double beta, Tensor& y) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override;
  void reduce(ReduceOp op, const Tensor& x, Tensor& out) override;
  void sum_rows(const Tensor& x, double beta, Tensor& out) override;

  void gelu_forward(const Tensor& x, Tensor& y) override;
  void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) override;

  void layernorm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y, Tensor& mean,
                         Tensor& rstd) override;
  void layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                          Tensor* dx, Tensor* dw, Tensor* db) override;

  void softmax_forward(const Tensor& x, Tensor& y) override;
  void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) override;

  void attention_forward(const Tensor& qkv, int64_t n_head, const AttentionDropout& dropout, Tensor& out,
                         Tensor& lse) override;
  void attention_backward(const Tensor& dout, const Tensor& qkv, const Tensor& out, const Tensor& lse, int64_t n_head,
                          const AttentionDropout& dropout, Tensor& dqkv) override;

  void embedding_forward(const Tensor& idx, const Tensor* wte, const Tensor* wpe, const VocabShard& shard,
                         Tensor& out) override;
  void embedding_backward(const Tensor& dout, const Tensor& idx, const VocabShard& shard, Tensor* dwte,
                          Tensor* dwpe) override;

  void dropout_forward(const Tensor& x, double p, RngKey key, Tensor& y) override;
  void dropout_backward(const Tensor& dy, double p, RngKey key, Tensor& dx) override;

  void adamw_step(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, const AdamWArgs& a) override;

  void cross_entropy_forward(const Tensor& logits, const Tensor& targets, const VocabShard& shard, Tensor& lse,
                             Tensor& target_logits) override;
  void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const VocabShard& shard, const Tensor& lse,
                              const Tensor& dlosses, Tensor& dlogits) override;

  void scaled_logsumexp(const Tensor& x, double scale, Tensor& lse) override;
  void kd_cross_term(const Tensor& a, const Tensor& b, double scale, const Tensor& lse_b, Tensor& out) override;
  void kd_backward(const Tensor& a, const Tensor& b, double scale, const Tensor& lse_a, const Tensor& lse_b,
                   const Tensor& dkl, Tensor& da) override;

  void gather_rows(const Tensor& src, const Tensor* index, const Tensor* weights, int64_t col, bool accumulate,
                   Tensor& dst) override;
  void combine_rows(const Tensor& src, const Tensor& index, const Tensor* weights, bool accumulate,
                    Tensor& dst) override;
  void row_dots(const Tensor& a, const Tensor* ia, const Tensor& b, const Tensor* ib, int64_t col,
                Tensor& out) override;
};

}  // namespace mt::cpu
