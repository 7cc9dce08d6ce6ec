// From the training configuration to the model's: one place for the mapping, used by training,
// generation and the benchmark.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>

#include "data/gpt2_tokenizer.h"
#include "moe/moe_feed_forward.h"
#include "nn/gpt.h"
#include "train/config.h"

namespace mt::train {

// The GPT-2 tokenizer a configuration names (vocab_file, merge_file; empty: the bundled files).
inline data::Gpt2Tokenizer config_tokenizer(const TrainConfig& cfg) {
  return data::Gpt2Tokenizer(cfg.vocab_file.empty() ? data::Gpt2Tokenizer::default_vocab_file() : cfg.vocab_file,
                             cfg.merge_file.empty() ? data::Gpt2Tokenizer::default_merge_file() : cfg.merge_file);
}

// The padded vocabulary: the smallest multiple of make_vocab_size_divisible_by that holds
// vocab_size entries. Unlike Megatron it does not depend on the tensor-parallel size (which must
// divide make_vocab_size_divisible_by), so a checkpoint loads under any layout.
inline int64_t padded_vocab(int64_t vocab_size, const TrainConfig& cfg) {
  int64_t multiple = cfg.make_vocab_size_divisible_by;
  return (vocab_size + multiple - 1) / multiple * multiple;
}

inline nn::GptConfig model_config(const TrainConfig& cfg, int64_t vocab_size,
                                  parallel::Communicator* tensor_group = nullptr) {
  nn::GptConfig mc;
  mc.tensor_group = tensor_group;
  mc.device = cfg.device == "cuda" ? Device::cuda() : Device::cpu();
  mc.num_layers = cfg.num_layers;
  mc.hidden_size = cfg.hidden_size;
  mc.num_attention_heads = cfg.num_attention_heads;
  mc.ffn_hidden_size = cfg.ffn_size();
  mc.max_position_embeddings = cfg.max_positions();
  mc.padded_vocab_size = padded_vocab(vocab_size, cfg);
  mc.init_method_std = cfg.init_method_std;
  mc.hidden_dropout = cfg.hidden_dropout;
  mc.attention_dropout = cfg.attention_dropout;
  mc.layernorm_epsilon = cfg.layernorm_epsilon;
  mc.seed = uint64_t(cfg.seed);
  mc.checkpoint_activations = cfg.checkpoint_activations || cfg.deepspeed_activation_checkpointing;
  mc.checkpoint_num_layers = cfg.checkpoint_num_layers;
  // ZeRO 2: no flat gradient buffer; each layer's gradients reduced into this rank's shard
  if (cfg.zero_stage >= 2) mc.grad_storage = GradStorage::PerParameter;
  return mc;
}

// Each layer's feed-forward: an MoE layer where experts_per_layer() > 1, else the dense MLP.
// With an expert group (expert parallelism), each MoE layer holds its share of the experts; with
// a tensor group the dense MLPs are split over it (MoE layers run whole on every tensor rank).
inline nn::FeedForwardFactory feed_forward_factory(const TrainConfig& cfg, const nn::GptConfig& mc,
                                                   parallel::Communicator* expert_group = nullptr) {
  std::vector<int64_t> experts = cfg.experts_per_layer();
  if (std::all_of(experts.begin(), experts.end(), [](int64_t e) { return e <= 1; })) return {};
  return [cfg, mc, experts, expert_group](ParameterRegistry& params, const std::string& prefix,
                                          int64_t layer) -> std::unique_ptr<nn::FeedForward> {
    double out_std = mc.init_method_std / std::sqrt(2.0 * double(mc.num_layers));
    if (experts[size_t(layer)] <= 1)
      return std::make_unique<nn::DenseMlp>(params, prefix, mc.hidden_size, mc.ffn_hidden_size, mc.init_method_std,
                                            out_std, rng_key(mc.seed, 0, 2000 + uint64_t(layer), 0x1417), mc.dtype,
                                            mc.tensor_group);
    moe::MoeLayerConfig m;
    m.router.num_experts = experts[size_t(layer)];
    m.router.topk = cfg.topk;
    m.router.capacity_factor = cfg.moe_train_capacity_factor;
    m.router.eval_capacity_factor = cfg.moe_eval_capacity_factor;
    m.router.min_capacity = cfg.moe_min_capacity;
    m.router.drop_tokens = !cfg.disable_moe_token_dropping;
    m.router.top2_2nd_expert_sampling = !cfg.disable_moe_top2_2nd_expert_sampling;
    m.router.noisy_gate_policy = cfg.noisy_gate_policy;
    m.router.use_rts = cfg.use_rts;
    m.z_loss_coeff = cfg.moe_z_loss_coeff;
    m.balancing = cfg.moe_router_load_balancing_type;
    m.expert_bias = cfg.moe_router_enable_expert_bias;
    m.diagnostics = cfg.moe_router_diagnostics;
    m.router.num_groups = cfg.moe_router_num_groups;
    m.router.score_function = cfg.moe_router_score_function;
    m.router.group_topk = cfg.moe_router_group_topk;
    m.weights.normalize = !cfg.moe_router_pre_softmax;
    m.weights.scale = cfg.moe_router_topk_scaling_factor;
    m.hidden = mc.hidden_size;
    m.ffn = cfg.moe_ffn_size();
    m.shared_ffn = cfg.moe_shared_expert_intermediate_size;
    m.residual = cfg.mlp_type == "residual";
    m.init_std = mc.init_method_std;
    m.output_init_std = out_std;
    m.seed = mc.seed;
    m.layer = layer;
    m.dtype = mc.dtype;
    m.expert_group = expert_group;
    return std::make_unique<moe::MoeFeedForward>(params, prefix, m);
  };
}

// Parameters of one rank's share of the model a configuration describes, counted without building
// it, by group (autograd/parameters.h): elements, and the length of the group's flat buffer (each
// tensor padded to ParameterRegistry::kAlign elements, as pack() lays them out). With tensor
// parallelism over tp ranks the word embedding, q/k/v, the attention output and the dense MLPs are
// split (MoE layers run whole on every tensor rank); with expert parallelism over ep ranks each
// holds E/ep experts of every MoE layer. tp = ep = 1: the whole model.
struct ParameterCounts {
  int64_t dense = 0, expert = 0;            // parameters
  int64_t dense_flat = 0, expert_flat = 0;  // elements of the flat value (and gradient) buffers
  int64_t total() const { return dense + expert; }
  int64_t flat() const { return dense_flat + expert_flat; }
  void add(int64_t n, bool is_expert = false) {
    (is_expert ? expert : dense) += n;
    (is_expert ? expert_flat : dense_flat) += padded_parameter_size(n);
  }
  static int64_t padded_parameter_size(int64_t n) {
    return (n + ParameterRegistry::kAlign - 1) / ParameterRegistry::kAlign * ParameterRegistry::kAlign;
  }
};

// One parameter tensor of a rank's model, as the registry holds it: its elements, its group, and
// the layer whose backward completes its gradient (-1: outside the layers; nn/gpt.h).
struct ParameterEntry {
  int64_t numel = 0;
  bool expert = false;
  int64_t layer = -1;
};

// This rank's parameter tensors in registration order (nn/gpt.cpp, moe/moe_layer.cpp), counted
// from the configuration without building the model.
inline std::vector<ParameterEntry> rank_parameter_list(const TrainConfig& cfg, int64_t vocab_size, int64_t tp = 1,
                                                       int64_t ep = 1) {
  // the dense MLP's width, and the experts' (and residual MLP's: a copy of the expert) width
  int64_t h = cfg.hidden_size, f = cfg.ffn_size(), fe = cfg.moe_ffn_size();
  std::vector<ParameterEntry> list;
  int64_t layer = -1;
  auto add = [&](int64_t n, bool is_expert = false) { list.push_back({n, is_expert, layer}); };
  auto mlp = [&](int64_t width, int64_t split, bool is_expert) {  // fc1 weight and bias, fc2 weight and bias
    for (int64_t t : {width * h / split, width / split, h * width / split, h}) add(t, is_expert);
  };
  add(padded_vocab(vocab_size, cfg) * h / tp);  // word embedding (tied output projection)
  add(cfg.max_positions() * h);                 // position embedding
  for (int64_t e : cfg.experts_per_layer()) {
    ++layer;
    for (int64_t t : {h, h, 3 * h * h / tp, 3 * h / tp, h * h / tp, h, h, h}) add(t);  // LayerNorms, attention
    if (e <= 1) {
      mlp(f, tp, false);
      continue;
    }
    add(e * h);                                                                        // gate
    for (int64_t i = 0; i < e / ep; ++i) mlp(fe, 1, true);                             // this rank's experts
    if (int64_t s = cfg.moe_shared_expert_intermediate_size; s > 0) mlp(s, 1, false);  // the shared expert
    if (cfg.mlp_type == "residual") {  // residual MLP and its coefficient
      mlp(fe, 1, false);
      add(2 * h);
      add(2);
    }
  }
  layer = -1;
  add(h);  // final LayerNorm
  add(h);
  return list;
}

inline ParameterCounts count_rank_parameters(const TrainConfig& cfg, int64_t vocab_size, int64_t tp = 1,
                                             int64_t ep = 1) {
  ParameterCounts n;
  for (const ParameterEntry& p : rank_parameter_list(cfg, vocab_size, tp, ep)) n.add(p.numel, p.expert);
  return n;
}

// Parameters of the model a configuration describes, counted without building it.
inline int64_t count_parameters(const TrainConfig& cfg, int64_t vocab_size) {
  return count_rank_parameters(cfg, vocab_size).total();
}

// Parameters one token uses: all but the experts it is not routed to (top-k of each MoE layer).
inline int64_t count_active_parameters(const TrainConfig& cfg, int64_t vocab_size) {
  int64_t h = cfg.hidden_size, f = cfg.moe_ffn_size(), per_expert = 2 * h * f + f + h;
  int64_t n = count_parameters(cfg, vocab_size);
  for (int64_t e : cfg.experts_per_layer())
    if (e > 1) n -= (e - std::min<int64_t>(cfg.topk, e)) * per_expert;
  return n;
}

// The model a training configuration describes, for a vocabulary of vocab_size tokens.
inline std::unique_ptr<nn::GptModel> make_model(const TrainConfig& cfg, int64_t vocab_size,
                                                parallel::Communicator* expert_group = nullptr,
                                                parallel::Communicator* tensor_group = nullptr) {
  nn::GptConfig mc = model_config(cfg, vocab_size, tensor_group);
  return std::make_unique<nn::GptModel>(mc, feed_forward_factory(cfg, mc, expert_group), cfg.moe_loss_coeff);
}

}  // namespace mt::train
