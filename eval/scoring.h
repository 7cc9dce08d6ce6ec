// Log-likelihood scoring for zero-shot evaluation, as lm-evaluation-harness 0.2.0 with
// Megatron-DeepSpeed's adaptor does it (examples_deepspeed/MoE/readme_evalharness.md,
// tasks/eval_harness/evaluate.py; docs/eval.md):
//   loglikelihood(context, continuation): full = context + continuation (tokenised separately),
//   left-truncated to max_length + 1, input = full[:-1]; the last len(continuation) positions
//   are scored: the sum of log p(continuation token) under the logits cut to the real
//   vocabulary, and whether the argmax equals the continuation token at every one (greedy).
// Every task reduces to such requests (rolling perplexity windows included).
//
// Speed: requests are sorted so that one whose input is a prefix of another's rides on that
// forward (a causal model scores both: BoolQ's " yes" and " no" share one), the remaining
// forwards are batched (right-padded to the longest in the batch) by descending length, only
// the scored rows are projected onto the vocabulary, and under mpirun the forwards are split
// over the ranks and the results all-reduced.
#pragma once

#include <cstdint>
#include <vector>

#include "nn/gpt.h"
#include "parallel/communicator.h"

namespace mt::eval {

struct ScoreRequest {
  std::vector<int32_t> context,
      continuation;  // token ids; context may be empty only if continuation is scored from an EOD prefix
};

struct ScoreResult {
  double logprob = 0;   // sum over the continuation's tokens
  bool greedy = false;  // argmax reproduces the continuation at every position
};

// What scoring needs from a model: logits for chosen positions of a forward.
class LogitSource {
 public:
  virtual ~LogitSource() = default;
  virtual int64_t max_length() const = 0;  // positions one forward takes
  virtual int64_t vocab_size() const = 0;  // the real vocabulary (logits cut to it)
  // tokens [B,T] (i32); rows: flat positions b*T + t -> logits [rows, vocab_size] (f32 or f64)
  virtual Tensor logits_at(const Tensor& tokens, const std::vector<int64_t>& rows) = 0;
};

// A GPT model in evaluation mode (no dropout, eval capacity): final hidden states of the scored
// rows times the first vocab_size rows of the output projection.
class GptLogitSource final : public LogitSource {
 public:
  GptLogitSource(const nn::GptModel& model, int64_t vocab_size);
  int64_t max_length() const override { return model_.config().max_position_embeddings; }
  int64_t vocab_size() const override { return vocab_; }
  Tensor logits_at(const Tensor& tokens, const std::vector<int64_t>& rows) override;

 private:
  const nn::GptModel& model_;
  int64_t vocab_;
};

struct ScoreOptions {
  int64_t batch_tokens = 4096;              // tokens per forward (batch size x padded length), at least one request
  int64_t max_length = 0;                   // 0: the source's max_length (seq_length for a trained model)
  int32_t pad_id = 0;                       // right padding (never scored)
  parallel::Communicator* ranks = nullptr;  // split the forwards over these ranks (null: this process)
  bool progress = false;                    // a progress line on stderr (long runs)
};

struct ScoreStats {
  int64_t requests = 0, forwards = 0, batches = 0;
  int64_t request_tokens = 0;  // input tokens of all requests (what an unbatched harness would feed)
  int64_t fed_tokens = 0;      // tokens this process fed the model, padding included
};

std::vector<ScoreResult> score(LogitSource& source, const std::vector<ScoreRequest>& requests,
                               const ScoreOptions& options = {}, ScoreStats* stats = nullptr);

}  // namespace mt::eval
