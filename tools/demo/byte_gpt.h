// A minimal byte-level GPT built directly from the differentiable ops of autograd/ops.h: the
// foundation's end-to-end check and the model of `moetrain demo` until the real GPT (nn/, issue
// #4) and its MoE layers (moe/, issue #5) exist. Pre-LayerNorm blocks, learned positions, tied
// input/output embedding, GELU MLP, init normal(0, 0.02) with output projections scaled by
// 1/sqrt(2 * layers), as Megatron does.
#pragma once

#include <vector>

#include "autograd/parameters.h"

namespace mt::demo {

struct ByteGptConfig {
  int64_t vocab = 256, seq_len = 64, layers = 3, hidden = 128, heads = 4;
  uint64_t seed = 1234;
  DType dtype = DType::F32;  // f64 for gradchecks
};

class ByteGpt {
 public:
  explicit ByteGpt(const ByteGptConfig& cfg);
  // tokens [B,T] (i32) -> logits [B,T,V]
  Variable logits(const Tensor& tokens) const;
  // Mean next-byte cross-entropy of tokens [B,T] against targets [B,T].
  Variable loss(const Tensor& tokens, const Tensor& targets) const;
  // Training FLOPs per token: 6 per weight of every matmul (forward 2, backward 4; the tied output
  // projection included) + 6 * layers * T * C for causal attention (the standard 6N + 12LTC count
  // with the masked half of the scores left out).
  double train_flops_per_token() const;
  ParameterRegistry& parameters() { return params_; }
  const ByteGptConfig& config() const { return cfg_; }

 private:
  struct Block {
    Variable ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, fc2_w, fc2_b;
  };
  ByteGptConfig cfg_;
  ParameterRegistry params_;
  Variable wte_, wpe_, lnf_w_, lnf_b_;
  std::vector<Block> blocks_;
};

}  // namespace mt::demo
