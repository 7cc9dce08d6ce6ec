// `moetrain bench eval [--task-data DIR] [--config X.yaml] [--key value ...]`: zero-shot scoring
// speed. The same (randomly initialised) model scores LAMBADA, PIQA and BoolQ from --task-data
// (default assets/eval) and runs the training step's forward (loss over every position of a
// micro-batch, no backward); the ratio is scored tokens/s over forward tokens/s, target >= 1.5.
// "Scored tokens" are the tokens of every request's input, what a harness feeding one request
// per forward would process; batching, prefix sharing and projecting only the scored rows are
// what make the harness faster than the training forward.
#include <cstdio>

#include "autograd/tape.h"
#include "eval/tasks.h"
#include "runtime/random.h"
#include "tools/bench/bench_config.h"
#include "tools/bench/ops_bench.h"
#include "tools/bench/report.h"
#include "tools/bench/timer.h"
#include "train/model_config.h"

namespace mt::bench {

int run_eval_bench(const BenchOptions& opt, const std::string& config_path, const std::vector<std::string>& overrides,
                   const std::string& task_data) {
  train::TrainConfig cfg = bench_model_config(config_path, overrides);
  cfg.disable_moe_token_dropping = true;  // as the evaluation harness runs MoE layers
  data::Gpt2Tokenizer tok(data::Gpt2Tokenizer::default_vocab_file(), data::Gpt2Tokenizer::default_merge_file());
  std::unique_ptr<nn::GptModel> model = train::make_model(cfg, tok.vocab_size());
  Reporter rep("eval", opt.json);
  if (!opt.json)
    std::printf("moetrain bench eval: %lld layers, hidden %lld, seq %lld; tasks from %s\n", (long long)cfg.num_layers,
                (long long)cfg.hidden_size, (long long)cfg.seq_length, task_data.c_str());
  rep.header();

  // the training step's forward: loss over a micro-batch, no tape
  int64_t b = cfg.micro_batch_size, t = cfg.seq_length;
  Tensor tokens = rand_uniform({b, t}, DType::F64, rng_key(1, 0, 0, 0), 0, 50257).to(DType::I32);
  double forward_s = time_per_call(
      [&] {
        NoGradGuard no_grad;
        model->loss(tokens, tokens, Tensor(), {false, 0});
      },
      opt.quick ? 0.2 : 1.0);
  double forward_tok_s = double(b * t) / forward_s;
  rep.line("train_forward_tokens_per_s", forward_tok_s, "tokens/s", -1, "loss over every position, no backward");

  eval::GptLogitSource source(*model, tok.vocab_size());
  eval::ScoreOptions so;
  so.batch_tokens = b * t;  // the same tokens per forward as the training micro-batch
  int64_t request_tokens = 0;
  double seconds = 0;
  for (const char* name : {"lambada", "piqa", "boolq"}) {
    std::unique_ptr<eval::EvalTask> task = eval::make_eval_task(name);
    eval::ScoreStats st;
    double s =
        time_per_call([&] { eval::run_eval_task(*task, source, tok, task_data, opt.quick ? 20 : 0, so, &st); }, 0.0, 3);
    rep.line(std::string(name) + "_scored_tokens_per_s", double(st.request_tokens) / s, "tokens/s", -1,
             std::to_string(st.requests) + " requests in " + std::to_string(st.forwards) + " forwards");
    request_tokens += st.request_tokens;
    seconds += s;
  }
  double eval_tok_s = double(request_tokens) / seconds;
  rep.line("eval_scored_tokens_per_s", eval_tok_s, "tokens/s", -1, "the three tasks together");
  rep.line("eval_over_train_forward", eval_tok_s / forward_tok_s, "ratio", eval_tok_s / forward_tok_s,
           "scored tokens/s / training forward tokens/s (target >= 1.5)");
  return 0;
}

}  // namespace mt::bench
