#include "moe/moe_layer.h"

#include <cmath>

#include "autograd/ops.h"
#include "moe/moe_ops.h"
#include "runtime/random.h"

namespace mt::moe {

MoeLayer::MoeLayer(ParameterRegistry& params, const std::string& prefix, const MoeLayerConfig& cfg) : cfg_(cfg) {
  int64_t h = cfg.hidden, f = cfg.ffn, e_count = cfg.router.num_experts;
  uint64_t layer = uint64_t(cfg.layer);
  auto key = [&](uint64_t role) { return rng_key(cfg.seed, 0, layer, 0x4D4F45 + role); };
  double bound = 1.0 / std::sqrt(double(h));
  gate_w_ = params.add(prefix + "gate.weight", rand_uniform({e_count, h}, cfg.dtype, key(1), -bound, bound));
  // One expert initialisation, copied to every expert (DeepSpeed deep-copies one MLP).
  Tensor fc1 = randn({f, h}, cfg.dtype, key(2), 0.0, cfg.init_std);
  Tensor fc2 = randn({h, f}, cfg.dtype, key(3), 0.0, cfg.output_init_std);
  for (int64_t e = 0; e < e_count; ++e) {
    std::string p = prefix + "experts." + std::to_string(e) + ".";
    ParamTags w = ParamTags{}.set_expert(int(cfg.layer), int(e));
    ParamTags b = ParamTags::no_decay().set_expert(int(cfg.layer), int(e));
    fc1_w_.push_back(params.add(p + "dense_h_to_4h.weight", fc1.clone(), w));
    fc1_b_.push_back(params.add(p + "dense_h_to_4h.bias", Tensor::zeros({f}, cfg.dtype), b));
    fc2_w_.push_back(params.add(p + "dense_4h_to_h.weight", fc2.clone(), w));
    fc2_b_.push_back(params.add(p + "dense_4h_to_h.bias", Tensor::zeros({h}, cfg.dtype), b));
  }
  if (cfg.residual) {  // the dense MLP starts as the same copy; the coefficient is PyTorch-initialised
    mlp_fc1_w_ = params.add(prefix + "mlp.dense_h_to_4h.weight", fc1.clone());
    mlp_fc1_b_ = params.add(prefix + "mlp.dense_h_to_4h.bias", Tensor::zeros({f}, cfg.dtype), ParamTags::no_decay());
    mlp_fc2_w_ = params.add(prefix + "mlp.dense_4h_to_h.weight", fc2.clone());
    mlp_fc2_b_ = params.add(prefix + "mlp.dense_4h_to_h.bias", Tensor::zeros({h}, cfg.dtype), ParamTags::no_decay());
    coeff_w_ = params.add(prefix + "coefficient.weight", rand_uniform({2, h}, cfg.dtype, key(4), -bound, bound));
    coeff_b_ = params.add(prefix + "coefficient.bias", rand_uniform({2}, cfg.dtype, key(5), -bound, bound),
                          ParamTags::no_decay());
  }
}

int64_t MoeLayer::active_matmul_weights() const {
  int64_t h = cfg_.hidden, f = cfg_.ffn, e = cfg_.router.num_experts;
  int64_t n = e * h + cfg_.router.topk * 2 * h * f;
  if (cfg_.residual) n += 2 * h * f + 2 * h;
  return n;
}

MoeOutput MoeLayer::forward(const Variable& x, bool training, RngKey key, const Routing* fixed) const {
  MT_CHECK(x.value().dim() == 2 && x.value().size(1) == cfg_.hidden, "MoE layer ", cfg_.layer, ": x ",
           x.value().str(), " must be [tokens, ", cfg_.hidden, "]");
  MoeOutput out;
  Variable gate_in = x;
  if (training && cfg_.router.noisy_gate_policy == "Jitter") {  // multiplicative U(0.99, 1.01) noise
    RngKey jitter = key;
    jitter.stream ^= 0x4A69747465ull;
    gate_in = ag::multiply(x, rand_uniform(x.shape(), x.dtype(), jitter, 0.99, 1.01));
  }
  Variable logits = ag::linear(gate_in, gate_w_);  // [S, E] (fp32, or f64 in gradchecks)
  Variable probs = ag::softmax(logits);
  out.routing = fixed ? *fixed : route(probs.value(), logits.value(), cfg_.router, training, key);
  const Routing& r = out.routing;
  // Router entropy (for metrics): mean over tokens of -sum_e P log P.
  std::vector<double> p = probs.value().to_double_vector();
  for (double v : p)
    if (v > 0) out.entropy -= v * std::log(v);
  out.entropy /= double(std::max<int64_t>(r.tokens, 1));

  Variable weights = gate_weights(probs, r);
  out.aux_loss = aux_loss(probs, r);
  std::vector<Variable> blocks = split_rows(dispatch(x, r), rows_per_expert(r));
  std::vector<Variable> outputs;
  for (int64_t e = 0; e < r.experts; ++e) {
    const Variable& rows = blocks[size_t(e)];
    if (rows.value().size(0) == 0) {
      outputs.push_back(Variable(Tensor::empty({0, cfg_.hidden}, x.dtype())));
      continue;
    }
    Variable hdn = ag::gelu(ag::linear(rows, fc1_w_[size_t(e)], fc1_b_[size_t(e)]));
    outputs.push_back(ag::linear(hdn, fc2_w_[size_t(e)], fc2_b_[size_t(e)]));
  }
  out.y = combine(concat_rows(outputs, cfg_.hidden), weights, r);
  if (cfg_.residual) {
    Variable mlp = ag::linear(ag::gelu(ag::linear(x, mlp_fc1_w_, mlp_fc1_b_)), mlp_fc2_w_, mlp_fc2_b_);
    Variable ab = ag::softmax(ag::linear(x, coeff_w_, coeff_b_));  // [S, 2]
    out.y = ag::add(scale_rows(out.y, ab, 0), scale_rows(mlp, ab, 1));
  }
  return out;
}

}  // namespace mt::moe
