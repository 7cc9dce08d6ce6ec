// Text generation from a trained checkpoint: greedy or sampled (temperature, top-k, top-p),
// token by token, each new token handed to a callback as soon as it exists (streaming).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/gpt.h"
#include "train/config.h"

namespace mt::train {

struct SamplingOptions {
  int64_t max_new_tokens = 100;
  int64_t min_new_tokens = 0;  // stop_token is never picked before this many new tokens (HF's min_new_tokens)
  double temperature = 1.0;    // 0 = greedy
  int64_t top_k = 0;           // 0 = all
  double top_p = 1.0;          // nucleus; 1 = all
  uint64_t seed = 1234;
  int32_t stop_token = -1;  // generation ends when it is picked (e.g. the EOD id); -1 = none
};
// Throws one clear error for an option out of range, naming it as `moetrain generate`'s flag.
void check_sampling_options(const SamplingOptions& options);

// How a generation ended: with the stop token (the last of new_tokens), or at max_new_tokens.
struct GenerationEnd {
  int64_t new_tokens = 0;
  bool at_stop_token = false;
};

// A model rebuilt from a checkpoint folder (its config.yaml) with the checkpoint's weights.
struct LoadedModel {
  std::unique_ptr<nn::GptModel> model;
  int64_t vocab_size = 0;  // unpadded: logits beyond it are never sampled
  int32_t eod = -1;
  std::string vocab_file, merge_file;
  std::string checkpoint;  // the checkpoint folder read
  TrainConfig config;      // its configuration (as `adjust` left it)
};
// dropless_moe: MoE layers keep every token (no capacity), as DeepSpeed's evaluation harness
// runs them (--disable-moe-token-dropping), so a token's score does not depend on its batch.
// `adjust` (optional) sees the checkpoint folder and its configuration before the model is built,
// and may check the caller's flags against it or change what does not shape the weights (the
// tokenizer files).
LoadedModel load_model_for_inference(const std::string& checkpoint, bool dropless_moe = false,
                                     const std::function<void(const std::string& dir, TrainConfig& cfg)>& adjust = {});

// Appends up to max_new_tokens to `tokens`, calling on_token(id) for each new one; says how it ended.
GenerationEnd generate(const nn::GptModel& model, int64_t vocab_size, std::vector<int32_t>& tokens,
                       const SamplingOptions& options, const std::function<void(int32_t)>& on_token = {});

}  // namespace mt::train
