#include "tools/demo/byte_gpt.h"

#include <cmath>
#include <string>

#include "autograd/ops.h"
#include "runtime/random.h"

namespace mt::demo {

ByteGpt::ByteGpt(const ByteGptConfig& cfg) : cfg_(cfg) {
  uint64_t stream = 0;
  auto normal = [&](const std::string& name, const Shape& s, double std) {
    return params_.add(name, randn(s, cfg.dtype, rng_key(cfg.seed, 0, stream++, 1), 0.0, std));
  };
  auto constant = [&](const std::string& name, int64_t n, double v) {
    return params_.add(name, Tensor::full({n}, v, cfg.dtype), ParamTags::no_decay());
  };
  int64_t c = cfg.hidden;
  double out_std = 0.02 / std::sqrt(2.0 * double(cfg.layers));
  wte_ = normal("wte", {cfg.vocab, c}, 0.02);
  wpe_ = normal("wpe", {cfg.seq_len, c}, 0.02);
  for (int64_t l = 0; l < cfg.layers; ++l) {
    std::string p = "h." + std::to_string(l) + ".";
    blocks_.push_back({constant(p + "ln1.weight", c, 1.0), constant(p + "ln1.bias", c, 0.0),
                       normal(p + "attn.qkv.weight", {3 * c, c}, 0.02), constant(p + "attn.qkv.bias", 3 * c, 0.0),
                       normal(p + "attn.proj.weight", {c, c}, out_std), constant(p + "attn.proj.bias", c, 0.0),
                       constant(p + "ln2.weight", c, 1.0), constant(p + "ln2.bias", c, 0.0),
                       normal(p + "mlp.fc.weight", {4 * c, c}, 0.02), constant(p + "mlp.fc.bias", 4 * c, 0.0),
                       normal(p + "mlp.proj.weight", {c, 4 * c}, out_std), constant(p + "mlp.proj.bias", c, 0.0)});
  }
  lnf_w_ = constant("lnf.weight", c, 1.0);
  lnf_b_ = constant("lnf.bias", c, 0.0);
  params_.pack();
}

Variable ByteGpt::logits(const Tensor& tokens) const {
  Variable x = ag::embedding(tokens, wte_, wpe_);  // [B,T,C]
  for (const Block& b : blocks_) {
    Variable h = ag::layernorm(x, b.ln1_w, b.ln1_b);
    Variable a = ag::causal_self_attention(ag::linear(h, b.qkv_w, b.qkv_b), cfg_.heads);
    x = ag::add(x, ag::linear(a, b.proj_w, b.proj_b));
    h = ag::layernorm(x, b.ln2_w, b.ln2_b);
    x = ag::add(x, ag::linear(ag::gelu(ag::linear(h, b.fc_w, b.fc_b)), b.fc2_w, b.fc2_b));
  }
  return ag::linear(ag::layernorm(x, lnf_w_, lnf_b_), wte_);  // tied output embedding
}

double ByteGpt::train_flops_per_token() const {
  double c = double(cfg_.hidden), matmul_weights = double(cfg_.layers) * 12.0 * c * c + double(cfg_.vocab) * c;
  return 6.0 * matmul_weights + 6.0 * double(cfg_.layers) * double(cfg_.seq_len) * c;
}

Variable ByteGpt::loss(const Tensor& tokens, const Tensor& targets) const {
  return ag::cross_entropy(logits(tokens), targets);
}

}  // namespace mt::demo
