// `moetrain trace`: one micro-batch through the model of a training config (its weights from a
// checkpoint with `load`, else the initialisation), forward and backward of the training loss,
// and every intermediate of one MoE layer - gate logits, probabilities, choices, capacity, kept
// and dropped tokens, slots, combine weights, expert inputs and outputs - with the gradients that
// reach them and the layer's weight gradients (moe/moe_trace.h).
#pragma once

#include <string>

#include "train/config.h"

namespace mt::toolkit {

struct TraceOptions {
  int64_t layer = 0;     // 1-based, as the training log numbers layers
  int64_t tokens = 4;    // tokens shown in the text layout
  std::string text;      // the micro-batch: this text's GPT-2 tokens; empty: random tokens
  uint64_t seed = 1234;  // random tokens, and the training-mode randomness (RTS, dropout)
  bool training = true;  // training mode (train capacity factor, gate noise, dropout) or eval
  bool json = false;     // every tensor in full, as JSON
};

std::string trace_moe_layer(const train::TrainConfig& cfg, const TraceOptions& options);

}  // namespace mt::toolkit
