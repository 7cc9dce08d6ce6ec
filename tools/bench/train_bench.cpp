// `moetrain bench train [--config X.yaml] [--key value ...] [--iters N]`: training throughput of a
// model on random tokens (no data needed): tokens/s and model FLOP/s (6 x matmul weights active
// per token + attention) as a fraction of this machine's SGEMM throughput, both measured in the
// same run. For an MoE configuration the dense twin (num_experts 1, same active parameters) is
// measured too, and the MoE/dense tokens/s ratio reported.
// Defaults: 6 layers, hidden 256, 8 heads, seq 256, micro-batch 8, vocab 50304.
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
namespace {

// Seconds per training step (forward, backward, clipping, AdamW on one micro-batch).
double seconds_per_step(const train::TrainConfig& cfg, int64_t iters, double* flops_per_token) {
  std::unique_ptr<nn::GptModel> model = train::make_model(cfg, 50257);  // GPT-2's vocabulary size
  train::AdamW adam(model->parameters(), {cfg.adam_beta1, cfg.adam_beta2, cfg.adam_eps, cfg.weight_decay});
  int64_t b = cfg.micro_batch_size, t = cfg.seq_length;
  Tensor tokens = rand_uniform({b, t}, DType::F64, rng_key(1, 0, 0, 0), 0, 50257).to(DType::I32);
  Tensor labels = rand_uniform({b, t}, DType::F64, rng_key(2, 0, 0, 0), 0, 50257).to(DType::I32);
  int64_t sample = 0;
  auto step = [&] {
    model->parameters().zero_grads();
    Variable loss = model->loss(tokens, labels, Tensor(), {true, sample});
    sample += b;
    current_tape().backward(loss);
    train::clip_grad_norm(model->parameters(), 1.0);
    adam.step(1e-4);
  };
  step();  // warm-up (allocations, caches)
  double start = now_seconds();
  for (int64_t i = 0; i < iters; ++i) step();
  *flops_per_token = model->train_flops_per_token(t);  // the active (top-1: dense-equal) FLOPs
  return (now_seconds() - start) / double(iters);
}

}  // namespace

int run_train_bench(const BenchOptions& opt, const std::string& config_path, const std::vector<std::string>& overrides,
                    int64_t iters) {
  train::TrainConfig cfg;
  cfg.num_layers = 6;
  cfg.hidden_size = 256;
  cfg.num_attention_heads = 8;
  cfg.seq_length = 256;
  cfg.micro_batch_size = 8;
  cfg.hidden_dropout = cfg.attention_dropout = 0.0;
  if (!config_path.empty()) cfg = train::load_config_file(config_path, cfg);
  std::vector<std::string> rest = train::apply_overrides(cfg, overrides);
  MT_CHECK(rest.empty(), "unexpected argument '", rest.empty() ? "" : rest[0], "'");
  bool moe = cfg.is_moe();
  Reporter rep("train", opt.json);
  if (!opt.json)
    std::printf("moetrain bench train: %lld layers, hidden %lld, %lld heads, seq %lld, micro-batch %lld%s\n",
                (long long)cfg.num_layers, (long long)cfg.hidden_size, (long long)cfg.num_attention_heads,
                (long long)cfg.seq_length, (long long)cfg.micro_batch_size,
                moe ? (", MoE: num_experts " + cfg.num_experts[0] + (cfg.num_experts.size() > 1 ? " ..." : "") +
                       ", top-" + std::to_string(cfg.topk) + ", " + cfg.mlp_type)
                          .c_str()
                    : "");
  rep.header();
  int64_t ref = 1024;
  Tensor ra = rand_uniform({ref, ref}, DType::F32, rng_key(3, 0, 0, 0), -1, 1);
  Tensor rb = rand_uniform({ref, ref}, DType::F32, rng_key(4, 0, 0, 0), -1, 1);
  Tensor rc = Tensor::empty({ref, ref}, DType::F32);
  double sgemm_s = time_per_call(
      [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(ref), int(ref), int(ref), 1.0f, ra.data<float>(),
                    int(ref), rb.data<float>(), int(ref), 0.0f, rc.data<float>(), int(ref));
      },
      0.2);
  double sgemm_gflops = 2.0 * double(ref * ref * ref) / sgemm_s * 1e-9;
  rep.line("sgemm_raw_1024", sgemm_gflops, "GFLOP/s", -1, "cblas_sgemm, the reference");
  double tokens = double(cfg.micro_batch_size * cfg.seq_length), flops = 0;
  double seconds = seconds_per_step(cfg, iters, &flops);
  double tok_s = tokens / seconds, gflops = tok_s * flops * 1e-9;
  std::string prefix = moe ? "moe_" : "";
  rep.line(prefix + "train_step_seconds", seconds, "s", -1, "forward + backward + clip + AdamW, one micro-batch");
  rep.line(prefix + "train_tokens_per_s", tok_s, "tokens/s");
  rep.line(prefix + "train_model_gflops", gflops, "GFLOP/s", gflops / sgemm_gflops,
           "ratio = model FLOP/s / SGEMM FLOP/s (active FLOPs: 6N + 6LTh per token)");
  if (moe) {
    train::TrainConfig dense = cfg;
    dense.num_experts = {"1"};
    double dense_flops = 0, dense_seconds = seconds_per_step(dense, iters, &dense_flops);
    double dense_tok_s = tokens / dense_seconds;
    rep.line("dense_train_tokens_per_s", dense_tok_s, "tokens/s", -1, "the dense twin: num_experts 1");
    rep.line("moe_over_dense_tokens_per_s", tok_s / dense_tok_s, "ratio", tok_s / dense_tok_s,
             "MoE tokens/s / dense twin tokens/s, same run");
  }
  return 0;
}

}  // namespace mt::bench
