// The GPT model as Megatron builds it: learned absolute position embeddings, pre-LayerNorm blocks
// (attention and MLP, each with a residual), a final LayerNorm and the output projection tied to
// the word embedding, over a padded vocabulary. Initialisation normal(0, init_method_std); the
// two output projections of each block (attention dense, MLP 4h->h) use
// init_method_std / sqrt(2 * num_layers); biases 0, LayerNorm gain 1.
//
// Dropout (training only): hidden_dropout on the embeddings and on each block's two outputs,
// attention_dropout on the attention probabilities. Masks are keyed by (seed, layer, role) and
// positioned by the global index of the micro-batch's first sample, so a sample gets the same
// mask whatever micro-batch or data-parallel rank carries it, and a resumed run the same masks.
//
// Activation checkpointing (checkpoint_activations): each chunk of checkpoint_num_layers layers is
// one checkpointed region (autograd/checkpoint.h): the forward keeps only the chunk's input
// [B,T,h] and the backward recomputes the chunk, with the same dropout masks (keyed) and the same
// MoE routing (kept), so the gradients are the same bits as without it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autograd/parameters.h"
#include "nn/feed_forward.h"
#include "parallel/communicator.h"
#include "runtime/rng.h"

namespace mt::nn {

struct GptConfig {
  int64_t num_layers = 2, hidden_size = 64, num_attention_heads = 4, ffn_hidden_size = 256;
  int64_t max_position_embeddings = 64, padded_vocab_size = 50304;
  double init_method_std = 0.02, hidden_dropout = 0.0, attention_dropout = 0.0, layernorm_epsilon = 1e-5;
  uint64_t seed = 1234;
  DType dtype = DType::F32;
  // Tensor parallelism (Megatron): attention heads, the dense MLP's ffn columns and the vocabulary
  // are split over this group (null: one rank holds everything). Each rank registers its shards of
  // the full tensors a single process initialises, so every layout computes the same function.
  parallel::Communicator* tensor_group = nullptr;
  // Evaluation only (a distillation teacher): no gradient buffers, parameters frozen.
  bool frozen = false;
  // Flat: one gradient buffer per parameter group; PerParameter: each parameter's gradient its own
  // tensor, made by the backward (ZeRO stage 2 reduces and releases it, train/zero_gradients.h).
  GradStorage grad_storage = GradStorage::Flat;
  // Recompute each chunk of checkpoint_num_layers layers in the backward instead of keeping its
  // activations (Megatron's --checkpoint-activations, granularity full, method uniform).
  bool checkpoint_activations = false;
  int64_t checkpoint_num_layers = 1;
  // Where the parameters live (initialised on the host, then packed there); token, label and
  // mask tensors given on the host are moved to it.
  Device device = Device::cpu();
};

// How a forward is run: evaluation (no dropout) or training with the micro-batch's first sample.
struct ForwardMode {
  bool training = false;
  int64_t first_sample = 0;
  // The gradient the backward will bring to the LM loss, when known before it (the trainer's loss
  // seed; 0: unknown): the cross-entropy then makes the logits' gradient with its forward, in one
  // pass over the logits (autograd/ops.h cross_entropy), over the logits' own memory, and
  // LossParts::logits is left undefined: the logits are the loss's alone.
  double loss_grad = 0;
};

// The parts of a training loss: total = lm + sum over MoE layers of (moe_loss_coeff * l_aux
// + moe_z_loss_coeff * l_z).
struct LossParts {
  Variable total;
  double lm_loss = 0, aux_loss = 0;    // aux: the unscaled sum over MoE layers
  double z_loss = 0;                   // the router z-losses' unweighted sum (moe_z_loss_coeff > 0)
  Variable logits;                     // the logits behind lm (this rank's vocabulary columns); undefined
                                       // with ForwardMode::loss_grad (the loss consumed them)
  std::vector<LayerLoadStats> layers;  // the MoE layers' loads
};

class GptModel {
 public:
  // `feed_forward` builds each layer's MLP (default: Megatron's dense MLP); `moe_loss_coeff`
  // weighs the blocks' auxiliary losses in the total.
  explicit GptModel(const GptConfig& cfg, FeedForwardFactory feed_forward = {}, double moe_loss_coeff = 0.0);
  GptModel(const GptModel&) = delete;
  GptModel& operator=(const GptModel&) = delete;

  // tokens [B,T] (i32/i64, T <= max_position_embeddings) -> logits [B,T,padded_vocab_size]
  // (one process: a tensor-parallel rank holds only its vocabulary columns)
  Variable logits(const Tensor& tokens, ForwardMode mode = {}) const;
  // The same for this rank's vocabulary columns [B,T,padded_vocab_size / tp] (all of them in one
  // process): what a tensor-parallel loss (the vocab-parallel cross-entropy, distillation) takes.
  Variable vocab_logits(const Tensor& tokens, ForwardMode mode = {}) const;
  // The final LayerNorm's output [B,T,h], before the (tied) output projection: scoring a few
  // positions projects only those rows (eval/scoring.h); a forward for the MoE layers' routing
  // alone (global_aux_loss's counting pass). Under tensor parallelism every rank holds all of it.
  Variable final_hidden(const Tensor& tokens, ForwardMode mode = {}) const;
  // The output projection [padded_vocab_size, h] (the word embedding, tied).
  const Variable& output_weight() const { return wte_; }
  // Mean cross-entropy of the next-token predictions, weighted by loss_mask [B,T] when given,
  // plus moe_loss_coeff x the MoE layers' load-balancing losses.
  Variable loss(const Tensor& tokens, const Tensor& labels, const Tensor& loss_mask, ForwardMode mode = {}) const;
  LossParts loss_parts(const Tensor& tokens, const Tensor& labels, const Tensor& loss_mask,
                       ForwardMode mode = {}) const;

  ParameterRegistry& parameters() { return params_; }
  const ParameterRegistry& parameters() const { return params_; }
  const GptConfig& config() const { return cfg_; }
  // Per registered parameter (registry order): the layer whose backward completes its gradient
  // (autograd/layer_boundary.h: each layer's forward starts with a mark), or -1 for the parameters
  // outside the layers (embeddings, the final LayerNorm), complete only when the backward ends.
  std::vector<int64_t> parameter_layers() const;
  // The MoE layers' expert biases (auxiliary-loss-free balancing), by layer index; empty without.
  std::map<int64_t, std::vector<double>*> expert_biases();
  // The MoE layers' gate-gradient terms (moe_router_diagnostics), by layer index; empty without.
  std::map<int64_t, GateGradientTerms*> gate_gradient_terms();
  // The MoE layers' global-batch balancing fractions (global_aux_loss), by layer index; empty without.
  std::map<int64_t, std::vector<double>*> global_aux_fractions();
  // Training FLOPs per token: 6 per matmul weight a token passes through (the tied output
  // projection included; in MoE layers the gate and its top-k experts) + 6 * layers * T * hidden
  // for causal attention at sequence length T.
  double train_flops_per_token(int64_t seq_length) const;

 private:
  struct Block {
    Variable ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b;
    std::unique_ptr<FeedForward> mlp;
  };
  // The final hidden states' logits (this rank's vocabulary columns under tensor parallelism);
  // fills the MoE layers' loss terms (moe_loss_coeff l_aux + the weighted z-loss) and loads when asked.
  Variable forward(const Tensor& tokens, ForwardMode mode, std::vector<Variable>* aux,
                   std::vector<LayerLoadStats>* loads) const;
  // The final LayerNorm's output (what forward projects onto the vocabulary).
  Variable hidden(const Tensor& tokens, ForwardMode mode, std::vector<Variable>* aux,
                  std::vector<LayerLoadStats>* loads) const;
  // Layers [first, last) on the residual stream x [B,T,h] -> [B,T,h]; appends the MoE layers'
  // loss terms and loads when asked.
  Variable layers(Variable x, int64_t first, int64_t last, ForwardMode mode, std::vector<Variable>* aux,
                  std::vector<LayerLoadStats>* loads) const;
  // The same as one checkpointed region: keeps x, recomputes the layers in the backward (the
  // loads are the forward's, reported once).
  Variable checkpointed_layers(const Variable& x, int64_t first, int64_t last, ForwardMode mode,
                               std::vector<Variable>* aux, std::vector<LayerLoadStats>* loads) const;
  // Each block's feed-forward state `get` returns, by layer index, where it has one.
  template <typename T>
  std::map<int64_t, T*> feed_forward_parts(T* (FeedForward::*get)());
  RngKey dropout_key(int64_t layer, int role, ForwardMode mode, int64_t elements_per_sample) const;

  int tp_size() const { return cfg_.tensor_group ? cfg_.tensor_group->size() : 1; }
  GptConfig cfg_;
  double moe_loss_coeff_;
  ParameterRegistry params_;
  Variable wte_, wpe_, lnf_w_, lnf_b_;
  std::vector<Block> blocks_;
};

}  // namespace mt::nn
