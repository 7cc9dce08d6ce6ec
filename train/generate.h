// Text generation from a trained checkpoint: greedy or sampled (temperature, top-k, top-p),
// token by token, each new token handed to a callback as soon as it exists (streaming).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/gpt.h"

namespace mt::train {

struct SamplingOptions {
  int64_t max_new_tokens = 100;
  double temperature = 1.0;  // 0 = greedy
  int64_t top_k = 0;         // 0 = all
  double top_p = 1.0;        // nucleus; 1 = all
  uint64_t seed = 1234;
  int32_t stop_token = -1;  // e.g. the EOD id; -1 = none
};

// A model rebuilt from a checkpoint folder (its config.yaml) with the checkpoint's weights.
struct LoadedModel {
  std::unique_ptr<nn::GptModel> model;
  int64_t vocab_size = 0;  // unpadded: logits beyond it are never sampled
  int32_t eod = -1;
  std::string vocab_file, merge_file;
};
// dropless_moe: MoE layers keep every token (no capacity), as DeepSpeed's evaluation harness
// runs them (--disable-moe-token-dropping), so a token's score does not depend on its batch.
LoadedModel load_model_for_inference(const std::string& checkpoint, bool dropless_moe = false);

// Appends up to max_new_tokens to `tokens`; on_token(id) is called for each new one.
void generate(const nn::GptModel& model, int64_t vocab_size, std::vector<int32_t>& tokens,
              const SamplingOptions& options, const std::function<void(int32_t)>& on_token = {});

}  // namespace mt::train
