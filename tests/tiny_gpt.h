// The small GPT model configuration the tests build (one helper instead of a copy per test): 2 layers,
// hidden 16, 2 heads, ffn 32, 12 positions, a vocabulary of 64, init std 0.3 (so gradients are not
// tiny), no dropout, f64. Tests change the fields their case needs.
#pragma once

#include "nn/gpt.h"

namespace testutil {

inline mt::nn::GptConfig tiny_gpt() {
  mt::nn::GptConfig c;
  c.num_layers = 2;
  c.hidden_size = 16;
  c.num_attention_heads = 2;
  c.ffn_hidden_size = 32;
  c.max_position_embeddings = 12;
  c.padded_vocab_size = 64;
  c.init_method_std = 0.3;
  c.hidden_dropout = 0;
  c.attention_dropout = 0;
  c.dtype = mt::DType::F64;
  return c;
}

}  // namespace testutil
