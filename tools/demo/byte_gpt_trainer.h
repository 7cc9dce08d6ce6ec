// Training loop of the demo's byte-level GPT: random windows of a text, AdamW over the registry's
// flat buffers, global-norm clipping, warmup + cosine learning rate, validation loss, sampling.
// Used by `moetrain demo` and by tests/tools/test_demo_training.cpp.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "runtime/rng.h"
#include "tools/demo/byte_gpt.h"

namespace mt::demo {

struct TrainOptions {
  int64_t steps = 600, batch = 32, warmup = 30;
  int64_t log_interval = 50, eval_interval = 200, eval_batches = 4;
  double lr = 3e-3, min_lr = 3e-4, weight_decay = 0.1, clip = 1.0;
  uint64_t seed = 1234;
};

struct StepLog {
  int64_t step;
  double loss, lr, grad_norm, tokens_per_s;
};

struct TrainReport {
  double initial_val_loss = 0, final_val_loss = 0, train_seconds = 0, tokens_per_s = 0;
  std::vector<double> losses;  // training loss of every step
};

// The whole file as bytes; an error names the file when it is missing or shorter than min_bytes.
std::string read_text_file(const std::string& path, size_t min_bytes);

class ByteGptTrainer {
 public:
  // The first 90% of `text` trains, the rest validates.
  ByteGptTrainer(ByteGpt& model, std::string text, TrainOptions options);
  double validation_loss() const;
  // Runs options.steps steps; on_log every log_interval steps, on_eval every eval_interval.
  TrainReport train(const std::function<void(const StepLog&)>& on_log = {},
                    const std::function<void(int64_t step, double val_loss)>& on_eval = {});
  double learning_rate(int64_t step) const;
  size_t train_bytes() const { return split_; }

 private:
  void sample_batch(size_t lo, size_t hi, RngKey key, Tensor& tokens, Tensor& targets) const;
  void adamw_step(double lr);

  ByteGpt& model_;
  std::string text_;
  TrainOptions opt_;
  size_t split_;
  std::vector<float> m_, v_;
  std::vector<uint8_t> decay_;  // per flat entry: 1 where weight decay applies
  int64_t adam_steps_ = 0;
};

// Continues `prompt` byte by byte from softmax(logits / temperature), seeded.
std::string generate(const ByteGpt& model, const std::string& prompt, int64_t n, double temperature, uint64_t seed);
// Bytes a terminal shows as themselves; others (an untrained model emits any byte) become '?'.
std::string printable(std::string s);

}  // namespace mt::demo
