// `moetrain bench train [--config X.yaml] [--iters N]`: training throughput of a model (random
// tokens, so no data is needed): tokens/s and model FLOP/s (6 x matmul weights x tokens +
// attention), as a fraction of this machine's SGEMM throughput measured in the same run.
// Without --config: 6 layers, hidden 256, 8 heads, seq 256, micro-batch 8, vocab 50304.
#include <cblas.h>

#include <cstdio>

#include "autograd/tape.h"
#include "nn/gpt.h"
#include "runtime/random.h"
#include "tools/bench/ops_bench.h"
#include "tools/bench/report.h"
#include "tools/bench/timer.h"
#include "train/config.h"
#include "train/model_config.h"
#include "train/optimizer.h"

namespace mt::bench {

int run_train_bench(const BenchOptions& opt, const std::string& config_path, int64_t iters) {
  train::TrainConfig cfg;
  cfg.num_layers = 6;
  cfg.hidden_size = 256;
  cfg.num_attention_heads = 8;
  cfg.seq_length = 256;
  cfg.micro_batch_size = 8;
  cfg.hidden_dropout = cfg.attention_dropout = 0.0;
  if (!config_path.empty()) cfg = train::load_config_file(config_path, cfg);
  nn::GptConfig mc = train::model_config(cfg, 50257);  // GPT-2's vocabulary size
  std::unique_ptr<nn::GptModel> model_ptr = train::make_model(cfg, 50257);
  nn::GptModel& model = *model_ptr;
  train::AdamW adam(model.parameters(), {cfg.adam_beta1, cfg.adam_beta2, cfg.adam_eps, cfg.weight_decay});
  int64_t b = cfg.micro_batch_size, t = cfg.seq_length;
  Tensor tokens = rand_uniform({b, t}, DType::F64, rng_key(1, 0, 0, 0), 0, 50257).to(DType::I32);
  Tensor labels = rand_uniform({b, t}, DType::F64, rng_key(2, 0, 0, 0), 0, 50257).to(DType::I32);
  int64_t sample = 0;
  auto step = [&] {
    model.parameters().zero_grads();
    Variable loss = model.loss(tokens, labels, Tensor(), {true, sample});
    sample += b;
    current_tape().backward(loss);
    train::clip_grad_norm(model.parameters(), 1.0);
    adam.step(1e-4);
  };
  Reporter rep("train", opt.json);
  if (!opt.json)
    std::printf("moetrain bench train: %lld layers, hidden %lld, %lld heads, seq %lld, micro-batch %lld, vocab %lld, "
                "%.2fM parameters\n",
                (long long)cfg.num_layers, (long long)cfg.hidden_size, (long long)cfg.num_attention_heads, (long long)t,
                (long long)b, (long long)mc.padded_vocab_size, double(model.parameters().numel()) / 1e6);
  rep.header();
  int64_t ref = 1024;
  Tensor ra = rand_uniform({ref, ref}, DType::F32, rng_key(3, 0, 0, 0), -1, 1);
  Tensor rb = rand_uniform({ref, ref}, DType::F32, rng_key(4, 0, 0, 0), -1, 1);
  Tensor rc = Tensor::empty({ref, ref}, DType::F32);
  auto sgemm = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(ref), int(ref), int(ref), 1.0f, ra.data<float>(),
                int(ref), rb.data<float>(), int(ref), 0.0f, rc.data<float>(), int(ref));
  };
  double sgemm_s = time_per_call(sgemm, 0.2);
  double sgemm_gflops = 2.0 * double(ref * ref * ref) / sgemm_s * 1e-9;
  step();  // warm-up (allocations, caches)
  double start = now_seconds();
  for (int64_t i = 0; i < iters; ++i) step();
  double seconds = (now_seconds() - start) / double(iters);
  double tok_s = double(b * t) / seconds;
  double gflops = tok_s * model.train_flops_per_token(t) * 1e-9;
  rep.line("sgemm_raw_1024", sgemm_gflops, "GFLOP/s", -1, "cblas_sgemm, the reference");
  rep.line("train_step_seconds", seconds, "s", -1, "forward + backward + clip + AdamW, one micro-batch");
  rep.line("train_tokens_per_s", tok_s, "tokens/s");
  rep.line("train_model_gflops", gflops, "GFLOP/s", gflops / sgemm_gflops,
           "ratio = model FLOP/s / SGEMM FLOP/s (6N + 6LTh per token)");
  return 0;
}

}  // namespace mt::bench
