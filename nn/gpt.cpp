#include "nn/gpt.h"

#include <algorithm>
#include <cmath>

#include "autograd/checkpoint.h"
#include "autograd/layer_boundary.h"
#include "autograd/ops.h"
#include "parallel/tensor_parallel.h"
#include "runtime/random.h"

namespace mt::nn {
namespace {
enum DropoutRole { kEmbedding = 0, kAttentionProbs = 1, kAttentionOut = 2, kMlpOut = 3 };
}

GptModel::GptModel(const GptConfig& cfg, FeedForwardFactory feed_forward, double moe_loss_coeff)
    : cfg_(cfg), moe_loss_coeff_(moe_loss_coeff) {
  MT_CHECK(cfg.num_layers > 0 && cfg.hidden_size > 0 && cfg.num_attention_heads > 0 &&
               cfg.hidden_size % cfg.num_attention_heads == 0 && cfg.ffn_hidden_size > 0 &&
               cfg.max_position_embeddings > 0 && cfg.padded_vocab_size > 0,
           "GPT model: layers, widths, heads (dividing hidden_size), positions and vocabulary must be positive");
  int64_t tp = tp_size();
  MT_CHECK(cfg.num_attention_heads % tp == 0 && cfg.ffn_hidden_size % tp == 0 && cfg.padded_vocab_size % tp == 0,
           "GPT model: tensor parallelism over ", tp, " ranks needs num_attention_heads (", cfg.num_attention_heads,
           "), ffn_hidden_size (", cfg.ffn_hidden_size, ") and the padded vocabulary (", cfg.padded_vocab_size,
           ") divisible by ", tp);
  MT_CHECK(cfg.checkpoint_num_layers > 0, "GPT model: checkpoint_num_layers must be positive; got ",
           cfg.checkpoint_num_layers);
  int64_t h = cfg.hidden_size, f = cfg.ffn_hidden_size;
  uint64_t stream = 0;
  // Each tensor's initial values come from its own stream, in registration order.
  // The full tensor is drawn (or filled) and this rank keeps its tensor-parallel part.
  auto normal = [&](const std::string& name, const Shape& s, double std, int tp_dim, int tp_blocks = 1) {
    Tensor init = randn(s, cfg.dtype, rng_key(cfg.seed, 0, stream++, 0x1417), 0.0, std);
    return add_tensor_parallel(params_, name, init, ParamTags{}.set_tp_split(tp_dim, tp_blocks), cfg.tensor_group);
  };
  auto constant = [&](const std::string& name, int64_t n, double v, int tp_dim = -1, int tp_blocks = 1) {
    return add_tensor_parallel(params_, name, Tensor::full({n}, v, cfg.dtype),
                               ParamTags::no_decay().set_tp_split(tp_dim, tp_blocks), cfg.tensor_group);
  };
  double std = cfg.init_method_std, out_std = std / std::sqrt(2.0 * double(cfg.num_layers));
  wte_ = normal("embedding.word_embeddings.weight", {cfg.padded_vocab_size, h}, std, 0);
  wpe_ = normal("embedding.position_embeddings.weight", {cfg.max_position_embeddings, h}, std, -1);
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    std::string p = "layers." + std::to_string(l) + ".";
    Block b;
    b.ln1_w = constant(p + "input_layernorm.weight", h, 1.0);
    b.ln1_b = constant(p + "input_layernorm.bias", h, 0.0);
    // q, k and v rows each split over the ranks (3 blocks): rank r computes its heads' q, k, v.
    b.qkv_w = normal(p + "self_attention.query_key_value.weight", {3 * h, h}, std, 0, 3);
    b.qkv_b = constant(p + "self_attention.query_key_value.bias", 3 * h, 0.0, 0, 3);
    b.proj_w = normal(p + "self_attention.dense.weight", {h, h}, out_std, 1);
    b.proj_b = constant(p + "self_attention.dense.bias", h, 0.0);
    b.ln2_w = constant(p + "post_attention_layernorm.weight", h, 1.0);
    b.ln2_b = constant(p + "post_attention_layernorm.bias", h, 0.0);
    if (feed_forward) {
      b.mlp = feed_forward(params_, p + "mlp.", l);
    } else {
      b.mlp = std::make_unique<DenseMlp>(params_, p + "mlp.", h, f, std, out_std,
                                         rng_key(cfg.seed, 0, stream++, 0x1417), cfg.dtype, cfg.tensor_group);
    }
    blocks_.push_back(std::move(b));
  }
  lnf_w_ = constant("final_layernorm.weight", h, 1.0);
  lnf_b_ = constant("final_layernorm.bias", h, 0.0);
  params_.pack(cfg.frozen, cfg.device, cfg.grad_storage);
}

template <typename T>
std::map<int64_t, T*> GptModel::feed_forward_parts(T* (FeedForward::*get)()) {
  std::map<int64_t, T*> out;
  for (size_t l = 0; l < blocks_.size(); ++l)
    if (T* part = (blocks_[l].mlp.get()->*get)()) out[int64_t(l)] = part;
  return out;
}

std::map<int64_t, std::vector<double>*> GptModel::expert_biases() {
  return feed_forward_parts(&FeedForward::expert_bias);
}

std::map<int64_t, GateGradientTerms*> GptModel::gate_gradient_terms() {
  return feed_forward_parts(&FeedForward::gate_gradient_terms);
}

std::map<int64_t, std::vector<double>*> GptModel::global_aux_fractions() {
  return feed_forward_parts(&FeedForward::global_aux_fractions);
}

std::vector<int64_t> GptModel::parameter_layers() const {
  std::vector<int64_t> layers;
  const std::string prefix = "layers.";
  for (const Parameter& p : params_.all())
    layers.push_back(p.name.rfind(prefix, 0) == 0 ? std::stoll(p.name.substr(prefix.size())) : -1);
  return layers;
}

RngKey GptModel::dropout_key(int64_t layer, int role, ForwardMode mode, int64_t elements_per_sample) const {
  RngKey key = rng_key(cfg_.seed, 0, uint64_t(layer), uint64_t(0xD0 + role));
  key.offset = uint64_t(mode.first_sample) * uint64_t(elements_per_sample);
  return key;
}

Variable GptModel::logits(const Tensor& tokens, ForwardMode mode) const {
  MT_CHECK(tp_size() == 1,
           "GPT model: logits() gives the whole vocabulary in one process only (tensor-parallel ranks "
           "hold a slice of it); load the checkpoint in one process to generate or evaluate");
  return forward(tokens, mode, nullptr, nullptr);
}

Variable GptModel::vocab_logits(const Tensor& tokens, ForwardMode mode) const {
  return forward(tokens, mode, nullptr, nullptr);
}

Variable GptModel::hidden(const Tensor& tokens_in, ForwardMode mode, std::vector<Variable>* aux,
                          std::vector<LayerLoadStats>* loads) const {
  Tensor tokens = tokens_in.device() == cfg_.device ? tokens_in : tokens_in.to(cfg_.device);
  MT_CHECK(tokens.dim() == 2 && tokens.size(1) <= cfg_.max_position_embeddings,
           "GPT model: tokens must be [batch, T] with T <= max_position_embeddings (", cfg_.max_position_embeddings,
           "); got ", tokens.str());
  int64_t t_len = tokens.size(1), h = cfg_.hidden_size;
  double p_hidden = mode.training ? cfg_.hidden_dropout : 0.0;
  Variable emb = tp_size() == 1 ? ag::embedding(tokens, wte_, wpe_)
                                : ag::add(parallel::vocab_parallel_embedding(tokens, wte_, cfg_.tensor_group),
                                          ag::embedding(tokens, {}, wpe_));
  Variable x = ag::dropout(emb, p_hidden, dropout_key(-1, kEmbedding, mode, t_len * h));
  int64_t num_layers = int64_t(blocks_.size());
  if (!cfg_.checkpoint_activations) {
    x = layers(x, 0, num_layers, mode, aux, loads);
  } else {
    for (int64_t first = 0; first < num_layers; first += cfg_.checkpoint_num_layers)
      x = checkpointed_layers(x, first, std::min(first + cfg_.checkpoint_num_layers, num_layers), mode, aux, loads);
  }
  return ag::layernorm(x, lnf_w_, lnf_b_, cfg_.layernorm_epsilon);
}

Variable GptModel::layers(Variable x, int64_t first, int64_t last, ForwardMode mode, std::vector<Variable>* aux,
                          std::vector<LayerLoadStats>* loads) const {
  int64_t t_len = x.value().size(1), h = cfg_.hidden_size, heads = cfg_.num_attention_heads;
  parallel::Communicator* tp = cfg_.tensor_group;
  int64_t local_heads = heads / tp_size(), first_head = tp ? tp->rank() * local_heads : 0;
  double p_hidden = mode.training ? cfg_.hidden_dropout : 0.0;
  double p_attn = mode.training ? cfg_.attention_dropout : 0.0;
  double eps = cfg_.layernorm_epsilon;
  for (int64_t layer = first; layer < last; ++layer) {
    const Block& b = blocks_[size_t(layer)];
    x = ag::mark_layer_start(x, layer);  // its backward: this layer's gradients are complete
    // Under tensor parallelism: this rank's heads (q, k, v columns), then the row-parallel output.
    Variable qkv = parallel::column_parallel_linear(ag::layernorm(x, b.ln1_w, b.ln1_b, eps), b.qkv_w, b.qkv_b, tp);
    Variable a = ag::causal_self_attention(
        qkv, local_heads,
        {p_attn, dropout_key(layer, kAttentionProbs, mode, heads * t_len * t_len), first_head, heads});
    x = ag::add(x, ag::dropout(parallel::row_parallel_linear(a, b.proj_w, b.proj_b, tp), p_hidden,
                               dropout_key(layer, kAttentionOut, mode, t_len * h)));
    Variable normed = ag::reshape(ag::layernorm(x, b.ln2_w, b.ln2_b, eps), {-1, h});  // [B*T, h]
    RngKey routing_key = rng_key(cfg_.seed, uint64_t(mode.first_sample), uint64_t(layer), 0x52);
    FeedForwardOutput ff = b.mlp->forward(normed, mode.training, routing_key, t_len);
    if (ff.aux_loss.defined()) {
      // the layer's terms of the training loss: moe_loss_coeff x l_aux (+ the weighted z-loss)
      Variable term = ag::scale(ff.aux_loss, moe_loss_coeff_);
      if (ff.extra_loss.defined()) term = ag::add(term, ff.extra_loss);
      if (aux) aux->push_back(term);
      if (loads) {
        ff.stats.layer = layer;
        loads->push_back(ff.stats);
      }
    }
    Variable m = ag::reshape(ff.y, x.shape());
    x = ag::add(x, ag::dropout(m, p_hidden, dropout_key(layer, kMlpOut, mode, t_len * h)));
  }
  return x;
}

Variable GptModel::checkpointed_layers(const Variable& x, int64_t first, int64_t last, ForwardMode mode,
                                       std::vector<Variable>* aux, std::vector<LayerLoadStats>* loads) const {
  auto forward_loads = std::make_shared<std::vector<LayerLoadStats>>();
  // outputs: the residual stream [B,T,h], then each MoE layer's aux loss (a scalar)
  std::vector<Variable> out = ag::checkpoint(
      [this, first, last, mode, forward_loads](const std::vector<Variable>& in) {
        std::vector<Variable> outputs;
        Variable y = layers(in[0], first, last, mode, &outputs, ag::recomputing() ? nullptr : forward_loads.get());
        outputs.insert(outputs.begin(), y);
        return outputs;
      },
      {x});
  if (aux) aux->insert(aux->end(), out.begin() + 1, out.end());
  if (loads) loads->insert(loads->end(), forward_loads->begin(), forward_loads->end());
  return out[0];
}

Variable GptModel::forward(const Tensor& tokens, ForwardMode mode, std::vector<Variable>* aux,
                           std::vector<LayerLoadStats>* loads) const {
  // tied output projection (this rank's vocabulary columns under tensor parallelism)
  return parallel::column_parallel_linear(hidden(tokens, mode, aux, loads), wte_, {}, cfg_.tensor_group);
}

Variable GptModel::final_hidden(const Tensor& tokens, ForwardMode mode) const {
  return hidden(tokens, mode, nullptr, nullptr);
}

Variable GptModel::loss(const Tensor& tokens, const Tensor& labels, const Tensor& loss_mask, ForwardMode mode) const {
  return loss_parts(tokens, labels, loss_mask, mode).total;
}

LossParts GptModel::loss_parts(const Tensor& tokens, const Tensor& labels, const Tensor& loss_mask,
                               ForwardMode mode) const {
  LossParts parts;
  std::vector<Variable> aux;
  parts.logits = forward(tokens, mode, &aux, &parts.layers);
  auto on_device = [&](const Tensor& t) { return !t.defined() || t.device() == cfg_.device ? t : t.to(cfg_.device); };
  // with the seed known nothing reads the logits after the loss: their gradient may take their memory
  bool consumed = mode.loss_grad != 0;
  Variable lm = parallel::vocab_parallel_cross_entropy(parts.logits, on_device(labels), on_device(loss_mask),
                                                       cfg_.tensor_group, mode.loss_grad, consumed);
  if (consumed) parts.logits = Variable();  // (and the step does not keep them through its backward)
  parts.lm_loss = lm.value().item();
  parts.total = lm;
  for (const Variable& term : aux) parts.total = ag::add(parts.total, term);
  for (const LayerLoadStats& l : parts.layers) {
    parts.aux_loss += l.aux_loss;
    parts.z_loss += l.z_loss;
  }
  return parts;
}

double GptModel::train_flops_per_token(int64_t seq_length) const {
  double h = double(cfg_.hidden_size), l = double(cfg_.num_layers);
  double matmul_weights = l * (3 * h * h + h * h) + double(cfg_.padded_vocab_size) * h;
  for (const Block& b : blocks_) matmul_weights += double(b.mlp->active_matmul_weights());
  return 6.0 * matmul_weights + 6.0 * l * double(seq_length) * h;
}

}  // namespace mt::nn
