#include "moe/moe_layer.h"

#include <cmath>

#include "autograd/autocast.h"
#include "autograd/checkpoint.h"
#include "autograd/ops.h"
#include "moe/expert_dispatcher.h"
#include "moe/moe_ops.h"
#include "moe/moe_probe.h"
#include "runtime/random.h"

namespace mt::moe {

MoeLayer::MoeLayer(ParameterRegistry& params, const std::string& prefix, const MoeLayerConfig& cfg) : cfg_(cfg) {
  int64_t h = cfg.hidden, f = cfg.ffn, e_count = cfg.router.num_experts;
  uint64_t layer = uint64_t(cfg.layer);
  int64_t ep = cfg.expert_group ? cfg.expert_group->size() : 1;
  MT_CHECK(e_count % ep == 0, "MoE layer ", cfg.layer, ": ", e_count, " experts cannot be spread evenly over ", ep,
           " expert-parallel ranks; choose moe_expert_parallel_size dividing every layer's num_experts");
  local_experts_ = e_count / ep;
  first_local_expert_ = cfg.expert_group ? cfg.expert_group->rank() * local_experts_ : 0;
  if (cfg.expert_bias) expert_bias_.assign(size_t(e_count), 0.0);
  if (cfg.diagnostics) {
    gate_terms_ = std::make_shared<nn::GateGradientTerms>();
    for (auto* v : {&gate_terms_->lm, &gate_terms_->balance, &gate_terms_->z}) v->assign(size_t(e_count * h), 0.0);
  }
  auto key = [&](uint64_t role) { return rng_key(cfg.seed, 0, layer, 0x4D4F45 + role); };
  double bound = 1.0 / std::sqrt(double(h));
  gate_w_ = params.add(prefix + "gate.weight", rand_uniform({e_count, h}, cfg.dtype, key(1), -bound, bound));
  // One expert initialisation, copied to every expert (DeepSpeed deep-copies one MLP).
  Tensor fc1 = randn({f, h}, cfg.dtype, key(2), 0.0, cfg.init_std);
  Tensor fc2 = randn({h, f}, cfg.dtype, key(3), 0.0, cfg.output_init_std);
  for (int64_t e = first_local_expert_; e < first_local_expert_ + local_experts_; ++e) {
    std::string p = prefix + "experts." + std::to_string(e) + ".";
    ParamTags w = ParamTags{}.set_expert(int(cfg.layer), int(e));
    ParamTags b = ParamTags::no_decay().set_expert(int(cfg.layer), int(e));
    fc1_w_.push_back(params.add(p + "dense_h_to_4h.weight", fc1.clone(), w));
    fc1_b_.push_back(params.add(p + "dense_h_to_4h.bias", Tensor::zeros({f}, cfg.dtype), b));
    fc2_w_.push_back(params.add(p + "dense_4h_to_h.weight", fc2.clone(), w));
    fc2_b_.push_back(params.add(p + "dense_4h_to_h.bias", Tensor::zeros({h}, cfg.dtype), b));
  }
  if (cfg.shared_ffn > 0) {  // the shared expert: a dense MLP of its own width and initial values
    int64_t s = cfg.shared_ffn;
    std::string p = prefix + "shared_expert.";
    shared_fc1_w_ = params.add(p + "dense_h_to_4h.weight", randn({s, h}, cfg.dtype, key(6), 0.0, cfg.init_std));
    shared_fc1_b_ = params.add(p + "dense_h_to_4h.bias", Tensor::zeros({s}, cfg.dtype), ParamTags::no_decay());
    shared_fc2_w_ = params.add(p + "dense_4h_to_h.weight", randn({h, s}, cfg.dtype, key(7), 0.0, cfg.output_init_std));
    shared_fc2_b_ = params.add(p + "dense_4h_to_h.bias", Tensor::zeros({h}, cfg.dtype), ParamTags::no_decay());
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
  n += 2 * h * cfg_.shared_ffn;
  return n;
}

namespace {
// into [E, h] += dz^T x for dz [S, E], x [S, h] (host f64: a diagnostic)
void add_gate_gradient(const Tensor& dz, const Tensor& x, std::vector<double>& into) {
  std::vector<double> g = dz.to_double_vector(), xv = x.to_double_vector();
  int64_t s = dz.size(0), e_count = dz.size(1), h = x.size(1);
  for (int64_t t = 0; t < s; ++t)
    for (int64_t e = 0; e < e_count; ++e) {
      double ge = g[size_t(t * e_count + e)];
      if (ge == 0) continue;
      for (int64_t i = 0; i < h; ++i) into[size_t(e * h + i)] += ge * xv[size_t(t * h + i)];
    }
}
}  // namespace

MoeOutput MoeLayer::forward(const Variable& x, bool training, RngKey key, const Routing* fixed,
                            int64_t sequence_length) const {
  MT_CHECK(x.value().dim() == 2 && x.value().size(1) == cfg_.hidden, "MoE layer ", cfg_.layer, ": x ", x.value().str(),
           " must be [tokens, ", cfg_.hidden, "]");
  MoeOutput out;
  // The teaching tools' hook (moe/moe_probe.h): named intermediates, and the routing to use.
  MoeProbe* probe = current_moe_probe();
  auto seen = [&](const char* name, const Variable& v) { return probe ? probe->on_value(cfg_.layer, name, v) : v; };
  Variable gate_in = x;
  if (training && cfg_.router.noisy_gate_policy == "Jitter") {  // multiplicative U(0.99, 1.01) noise
    RngKey jitter = key;
    jitter.stream ^= 0x4A69747465ull;
    gate_in = ag::multiply(x, rand_uniform(x.shape(), x.dtype(), jitter, 0.99, 1.01));
  }
  Variable logits;  // [S, E]: f32 even under mixed precision (or f64 in gradchecks)
  {
    ag::FullPrecision fp32_gate;
    logits = seen("gate_logits", ag::linear(gate_in, gate_w_));
  }
  // the scores: softmax(z), or per expert sigmoid(z) (moe_router_score_function); the balancing
  // losses and the entropy read them as a distribution over experts (sigmoid: each row normalised)
  bool sigmoid = cfg_.router.score_function == "sigmoid";
  // With diagnostics each loss term reads the logits through its own tap (and its own copy of the
  // scores), which adds that term's dz^T x into its share of the gate's gradient.
  bool split = gate_terms_ && any_requires_grad({&logits});
  auto tap = [&](std::vector<double> nn::GateGradientTerms::*term) {
    if (!split) return logits;
    return ag::observe(logits, [terms = gate_terms_, term, xin = gate_in.value()](const Tensor& dz) {
      add_gate_gradient(dz, xin, (*terms).*term);
    });
  };
  auto scores = [&](const Variable& z) { return sigmoid ? sigmoid_scores(z) : ag::softmax(z); };
  Variable probs = seen("gate_probs", scores(tap(&nn::GateGradientTerms::lm)));
  Variable balance_scores = split ? scores(tap(&nn::GateGradientTerms::balance)) : probs;
  Variable distribution = sigmoid ? normalize_rows(balance_scores) : balance_scores;
  if (cfg_.z_loss_coeff > 0) out.z_loss = seen("l_z", router_z_loss(tap(&nn::GateGradientTerms::z)));
  // (inside a checkpointed region the recompute takes the forward's routing: autograd/checkpoint.h)
  out.routing = fixed ? *fixed : ag::checkpoint_decision<Routing>([&] {
    if (expert_bias_.empty()) return route(probs.value(), logits.value(), cfg_.router, training, key);
    RouterConfig biased = cfg_.router;
    biased.expert_bias = expert_bias_;
    return route(probs.value(), logits.value(), biased, training, key);
  });
  if (probe)
    if (const Routing* replay = probe->on_routing(cfg_.layer, out.routing)) out.routing = *replay;
  const Routing& r = out.routing;
  // Router entropy (for metrics): mean over tokens of -sum_e P log P (the forward reports it, a
  // recompute does not).
  if (!ag::recomputing()) {
    std::vector<double> p = distribution.value().to_double_vector();
    for (double v : p)
      if (v > 0) out.entropy -= v * std::log(v);
    out.entropy /= double(std::max<int64_t>(r.tokens, 1));
  }

  // (the probabilities' two uses are seen apart: each branch's share of dP)
  Variable weights = seen("combine_weights", gate_weights(seen("gate_probs.to_weights", probs), r, cfg_.weights));
  out.aux_loss = seen("l_aux", balancing_loss(seen("gate_probs.to_l_aux", distribution), r, sequence_length));
  // route -> dispatch -> experts -> combine
  auto index = std::make_shared<const RowIndex>(r, x.device());  // one copy to the device per call
  Variable rows = seen("expert_inputs", dispatch(x, r, index));
  std::unique_ptr<ExpertDispatcher> exchange = make_expert_dispatcher(cfg_.expert_group, local_experts_, cfg_.hidden);
  Variable expert_out = exchange->from_experts(run_local_experts(exchange->to_experts(rows, rows_per_expert(r))));
  expert_out = seen("expert_outputs", expert_out);
  out.y = seen("combined", combine(expert_out, weights, r, index));
  if (cfg_.shared_ffn > 0) {  // + the shared expert on every token
    Variable shared = seen("shared_expert", ag::linear(ag::gelu(ag::linear(x, shared_fc1_w_, shared_fc1_b_)),
                                                       shared_fc2_w_, shared_fc2_b_));
    out.y = ag::add(out.y, shared);
  }
  if (cfg_.residual) {
    Variable mlp =
        seen("residual_mlp", ag::linear(ag::gelu(ag::linear(x, mlp_fc1_w_, mlp_fc1_b_)), mlp_fc2_w_, mlp_fc2_b_));
    Variable ab = seen("residual_coefficients", ag::softmax(ag::linear(x, coeff_w_, coeff_b_)));  // [S, 2]
    out.y = ag::add(scale_rows(out.y, ab, 0), scale_rows(mlp, ab, 1));
  }
  out.y = seen("output", out.y);
  return out;
}

Variable MoeLayer::balancing_loss(const Variable& probs, const Routing& r, int64_t sequence_length) const {
  if (cfg_.balancing == "seq_aux_loss") return seq_aux_loss(probs, r, sequence_length > 0 ? sequence_length : r.tokens);
  if (cfg_.balancing == "none") return Variable(Tensor::scalar(0.0, probs.dtype(), probs.device()));
  if (cfg_.balancing == "global_aux_loss" && !global_fractions_.empty())
    return aux_loss(probs, global_fractions_, r.aux_scale);
  MT_CHECK(cfg_.balancing == "aux_loss" || cfg_.balancing == "global_aux_loss", "MoE layer ", cfg_.layer,
           ": unknown balancing loss '", cfg_.balancing, "'");
  return aux_loss(probs, r);
}

std::vector<Variable> MoeLayer::run_local_experts(const std::vector<Variable>& blocks) const {
  std::vector<Variable> outputs;
  for (size_t l = 0; l < blocks.size(); ++l) {
    if (blocks[l].value().size(0) == 0) {
      // No rows: an empty output that stays on the tape (a [0,h] view of the input). With expert
      // parallelism the backward must still reach the all_to_all_v that delivered these rows,
      // because that backward is a collective the other ranks of the group are waiting in.
      outputs.push_back(ag::reshape(blocks[l], {0, cfg_.hidden}));
      continue;
    }
    Variable hdn = ag::gelu(ag::linear(blocks[l], fc1_w_[l], fc1_b_[l]));
    outputs.push_back(ag::linear(hdn, fc2_w_[l], fc2_b_[l]));
  }
  return outputs;
}

}  // namespace mt::moe
