// From the training configuration to the model's: one place for the mapping, used by training,
// generation and the benchmark.
#pragma once

#include "nn/gpt.h"
#include "train/config.h"

namespace mt::train {

// Megatron's padded vocabulary: the smallest multiple of divisible_by x tensor-parallel size
// that holds vocab_size entries.
inline int64_t padded_vocab(int64_t vocab_size, const TrainConfig& cfg) {
  int64_t multiple = cfg.make_vocab_size_divisible_by * cfg.tensor_model_parallel_size;
  return (vocab_size + multiple - 1) / multiple * multiple;
}

inline nn::GptConfig model_config(const TrainConfig& cfg, int64_t vocab_size) {
  nn::GptConfig mc;
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
  return mc;
}

}  // namespace mt::train
