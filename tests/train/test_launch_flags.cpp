// Megatron-DeepSpeed's launch-script flags and DeepSpeed JSON (issue 18): what each does, and the
// clear error where one has no meaning here.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/deepspeed_config.h"
#include "train/model_config.h"
#include "train/optimizer.h"
#include "train/trainer.h"
#include "training_fixtures.h"

using namespace mt;
using namespace mt::train;
using namespace trainfix;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

// A DeepSpeed JSON file with `text`.
std::string write_json(const fs::path& dir, const std::string& name, const std::string& text) {
  fs::create_directories(dir);
  std::string path = (dir / name).string();
  std::ofstream(path) << text;
  return path;
}

// The filled ds_config_gpt_TEMPLATE.json of the MoE scripts (global batch 256, micro-batch 4).
const char* kTemplate = R"({
  "train_batch_size": 256, "train_micro_batch_size_per_gpu": 4, "steps_per_print": 10,
  "zero_optimization": {"stage": 0}, "gradient_clipping": 1.0, "prescale_gradients": true,
  "fp16": {"enabled": true, "loss_scale": 0, "loss_scale_window": 500, "hysteresis": 2,
           "min_loss_scale": 1, "initial_scale_power": 11},
  "bf16": {"enabled": false},
  "curriculum_learning": {"enabled": false, "curriculum_type": "seqlen", "min_difficulty": 80,
     "max_difficulty": 2048, "schedule_type": "fixed_linear",
     "schedule_config": {"total_curriculum_step": 72344, "difficulty_step": 8}},
  "wall_clock_breakdown": false
})";

// Every training record's `key` (iteration order).
std::vector<nlohmann::json> records(const fs::path& metrics, const std::string& split = "train") {
  std::vector<nlohmann::json> out;
  std::istringstream in(slurp(metrics));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.value("split", "") == split) out.push_back(j);
  }
  return out;
}

}  // namespace

TEST_CASE("the MoE scripts' DeepSpeed JSON sets batch, clipping and fp16, checked against the flags",
          "[train][config][deepspeed]") {
  fs::path dir = fresh_dir("ds_json");
  TrainConfig c;
  c.micro_batch_size = 4;
  c.global_batch_size = 256;
  c.clip_grad = 0.5;
  c.deepspeed_config = write_json(dir, "ds.json", kTemplate);
  apply_deepspeed_config(c);
  REQUIRE(c.precision == "fp16");
  REQUIRE(c.initial_loss_scale == 2048.0);
  REQUIRE(c.loss_scale == 0);
  REQUIRE(c.loss_scale_window == 500);
  REQUIRE(c.hysteresis == 2);
  REQUIRE(c.min_loss_scale == 1.0);
  REQUIRE(c.clip_grad == 1.0);
  REQUIRE(c.prescale_gradients);
  REQUIRE(c.zero_stage == 0);
  REQUIRE_FALSE(c.curriculum_learning);
  TrainConfig again = c;  // idempotent (the trainer applies it again)
  apply_deepspeed_config(again);
  REQUIRE(to_yaml(again) == to_yaml(c));

  TrainConfig other = c;
  other.global_batch_size = 128;
  REQUIRE_THROWS_WITH(apply_deepspeed_config(other),
                      Contains("global_batch_size 128") && Contains("train_batch_size 256") && Contains("ds.json"));
  other = c;
  other.micro_batch_size = 8;
  REQUIRE_THROWS_WITH(apply_deepspeed_config(other), Contains("train_micro_batch_size_per_gpu 4"));
  other = c;
  other.deepspeed_config = write_json(dir, "opt.json", R"({"optimizer": {"type": "Adam"}})");
  REQUIRE_THROWS_WITH(apply_deepspeed_config(other), Contains("'optimizer' is not supported") && Contains("opt.json"));
  other.deepspeed_config =
      write_json(dir, "zero2.json", R"({"zero_optimization": {"stage": 2, "reduce_bucket_size": 30000}})");
  apply_deepspeed_config(other);
  other.data_path = {"x"};
  other.train_iters = 1;
  CHECK(other.zero_stage == 2);
  CHECK(other.reduce_bucket_size == 30000);
  REQUIRE_NOTHROW(validate(other));
  other.reduce_bucket_size = 0;
  REQUIRE_THROWS_WITH(validate(other), Contains("reduce_bucket_size must be positive"));
  other.deepspeed_config = write_json(dir, "zero2_flags.json",
                                      R"({"zero_optimization": {"stage": 2, "overlap_comm": true,
                                          "contiguous_gradients": true, "reduce_scatter": true}})");
  REQUIRE_NOTHROW(apply_deepspeed_config(other));
  other.deepspeed_config =
      write_json(dir, "zero2_allreduce.json", R"({"zero_optimization": {"stage": 2, "reduce_scatter": false}})");
  REQUIRE_THROWS_WITH(apply_deepspeed_config(other),
                      Contains("zero2_allreduce.json") && Contains("reduce_scatter false is not supported"));
  other.reduce_bucket_size = 30000;
  other.zero_stage = 3;
  REQUIRE_THROWS_WITH(validate(other), Contains("zero_stage 3") && Contains("stage 3") && Contains("not supported"));
  other.deepspeed_config =
      write_json(dir, "zero1.json", R"({"zero_optimization": {"stage": 1, "allgather_bucket_size": 20000}})");
  apply_deepspeed_config(other);
  CHECK(other.zero_stage == 1);
  CHECK(other.allgather_bucket_size == 20000);
  REQUIRE_NOTHROW(validate(other));
  other.allgather_bucket_size = 0;
  REQUIRE_THROWS_WITH(validate(other), Contains("allgather_bucket_size must be positive"));
  other = c;
  other.deepspeed_config = write_json(dir, "both.json", R"({"fp16": {"enabled": true}, "bf16": {"enabled": true}})");
  REQUIRE_THROWS_WITH(apply_deepspeed_config(other), Contains("both fp16 and bf16"));
  other.deepspeed_config = write_json(dir, "broken.json", "{\"train_batch_size\": ");
  REQUIRE_THROWS_WITH(apply_deepspeed_config(other), Contains("broken.json") && Contains("not valid JSON"));
  fs::remove_all(dir);
}

TEST_CASE("the launch scripts' flags: switches, accepted ones, and the ones with no meaning here refused",
          "[train][config][deepspeed]") {
  TrainConfig c;
  std::vector<std::string> rest = apply_overrides(c, {"--fp16",
                                                      "--deepspeed",
                                                      "--no-pipeline-parallel",
                                                      "--pipeline-model-parallel-size",
                                                      "1",
                                                      "--create-moe-param-group",
                                                      "--num-workers",
                                                      "0",
                                                      "--data-impl",
                                                      "mmap",
                                                      "--no-load-rng",
                                                      "--override-opt_param-scheduler",
                                                      "--checkpoint-activations",
                                                      "--deepspeed-activation-checkpointing",
                                                      "--train-iters",
                                                      "10",
                                                      "--train-tokens",
                                                      "1000",
                                                      "--micro-batch-size",
                                                      "2",
                                                      "--data-path",
                                                      "x"});
  REQUIRE(rest.empty());
  REQUIRE(c.precision == "fp16");
  REQUIRE(c.override_opt_param_scheduler);
  REQUIRE_NOTHROW(validate(c));
  TrainConfig b;
  apply_overrides(b, {"--bf16"});
  REQUIRE(b.precision == "bf16");

  TrainConfig bad = c;
  bad.pipeline_model_parallel_size = 2;
  REQUIRE_THROWS_WITH(validate(bad), Contains("pipeline parallelism is not supported"));
  bad = c;
  bad.data_impl = "lazy";
  REQUIRE_THROWS_WITH(validate(bad), Contains("data_impl 'lazy'"));
  bad = c;
  bad.bf16 = true;
  REQUIRE_THROWS_WITH(validate(bad), Contains("fp16 or bf16, not both"));
  bad = c;
  bad.use_checkpoint_opt_param_scheduler = true;
  REQUIRE_THROWS_WITH(validate(bad), Contains("not both"));
}

TEST_CASE("DeepSpeed's fixed_linear sequence-length curriculum, step by step", "[train][config][curriculum]") {
  TrainConfig c;
  c.seq_length = 2048;
  c.curriculum_learning = true;
  c.curriculum_min_difficulty = 80;
  c.curriculum_max_difficulty = 2048;
  c.curriculum_total_step = 1000;
  c.curriculum_difficulty_step = 8;
  // DeepSpeed's CurriculumScheduler: floor(s / total * (max - min) + min), down to a multiple of
  // difficulty_step, at most max (values worked by hand)
  REQUIRE(curriculum_seq_length(c, 1) == 80);      // floor(81.968) = 81 -> 80
  REQUIRE(curriculum_seq_length(c, 10) == 96);     // floor(99.68) = 99 -> 96
  REQUIRE(curriculum_seq_length(c, 500) == 1064);  // floor(1064) = 1064
  REQUIRE(curriculum_seq_length(c, 999) == 2040);  // floor(2046.032) = 2046 -> 2040
  REQUIRE(curriculum_seq_length(c, 1000) == 2048);
  REQUIRE(curriculum_seq_length(c, 5000) == 2048);
  c.curriculum_learning = false;
  REQUIRE(curriculum_seq_length(c, 1) == 2048);
}

TEST_CASE("training stops at train_iters or train_tokens, whichever comes first, train_samples, a curriculum",
          "[train][deepspeed][curriculum]") {
  fs::path dir = fresh_dir("stops");
  TrainConfig c = tiny_run(dir);
  c.num_layers = 1;
  c.eval_iters = 0;
  c.train_iters = 100;          // the scripts' deliberately too many iterations
  c.train_tokens = 5 * 4 * 16;  // 5 global batches of 4 samples x 16 tokens
  REQUIRE(run_training(c, quiet_options()).iterations == 5);

  TrainConfig s = tiny_run(dir);
  s.num_layers = 1;
  s.eval_iters = 0;
  s.save = (dir / "samples").string();
  s.metrics_file = (dir / "samples.jsonl").string();
  s.train_iters = 0;
  s.train_samples = 14;  // 14 / 4 = 3 iterations (Megatron floors)
  REQUIRE(run_training(s, quiet_options()).iterations == 3);

  // A curriculum from 8 to 16 tokens over 4 steps: tokens are counted at the curriculum's length,
  // so train_tokens lasts longer, and the log shows the length and the phase times.
  TrainConfig cl = c;
  cl.save = (dir / "cl").string();
  cl.metrics_file = (dir / "cl.jsonl").string();
  cl.curriculum_learning = true;
  cl.curriculum_min_difficulty = 8;
  cl.curriculum_max_difficulty = 16;
  cl.curriculum_total_step = 4;
  cl.curriculum_difficulty_step = 4;
  cl.wall_clock_breakdown = true;
  TrainSummary sum = run_training(cl, quiet_options());
  std::vector<int64_t> lengths, tokens;
  for (const nlohmann::json& r : records(cl.metrics_file)) {
    lengths.push_back(r["curriculum_seqlen"].get<int64_t>());
    tokens.push_back(r["consumed_tokens"].get<int64_t>());
    REQUIRE(r["timers"]["forward-backward"].get<double>() > 0);
  }
  // steps 1..: floor(8 + 8 s / 4) down to a multiple of 4 = 8, 12, 12, 16, 16, ...
  REQUIRE(lengths == std::vector<int64_t>{8, 12, 12, 16, 16, 16});
  REQUIRE(tokens == std::vector<int64_t>{32, 80, 128, 192, 256, 320});
  REQUIRE(sum.iterations == 6);  // 320 tokens reached at iteration 6 instead of 5
  fs::remove_all(dir);
}

TEST_CASE("resume options: the LR schedule checked as Megatron, no_load_optim, finetune", "[train][deepspeed]") {
  fs::path dir = fresh_dir("resume_flags");
  TrainConfig c = tiny_run(dir);
  c.num_layers = 1;
  c.eval_iters = 0;
  c.train_iters = 4;
  c.lr_warmup_iters = 1;
  run_training(c, quiet_options());  // decay = train_iters = 4, saved in the checkpoint

  TrainConfig longer = c;
  longer.load = c.save;
  longer.train_iters = 6;  // decay 6 now
  REQUIRE_THROWS_WITH(run_training(longer, quiet_options()),
                      Contains("decay 6 iterations here, 4 iterations in the checkpoint") &&
                          Contains("--override-opt_param-scheduler") &&
                          Contains("--use-checkpoint-opt_param-scheduler"));
  // keep the checkpoint's schedule: past its decay the rate is min_lr
  TrainConfig keep = longer;
  keep.use_checkpoint_opt_param_scheduler = true;
  keep.metrics_file = (dir / "keep.jsonl").string();
  keep.save = (dir / "keep").string();
  run_training(keep, quiet_options());
  std::vector<nlohmann::json> kept = records(keep.metrics_file);
  REQUIRE(kept.back()["lr"].get<double>() == Approx(c.min_lr));
  // take this run's schedule
  TrainConfig take = longer;
  take.override_opt_param_scheduler = true;
  take.metrics_file = (dir / "take.jsonl").string();
  take.save = (dir / "take").string();
  run_training(take, quiet_options());
  LrSchedule six(take, 6);
  REQUIRE(records(take.metrics_file).back()["lr"].get<double>() == Approx(six.lr(5, 0)));

  // no_load_optim: the counters go on, AdamW's state starts afresh (its step count from 0)
  TrainConfig fresh_optim = take;
  fresh_optim.no_load_optim = true;
  fresh_optim.load = (dir / "ckpt" / "iter_0000004").string();
  fresh_optim.save = (dir / "no_optim").string();
  fresh_optim.metrics_file = (dir / "no_optim.jsonl").string();
  run_training(fresh_optim, quiet_options());
  nlohmann::json meta = nlohmann::json::parse(slurp(dir / "no_optim" / "iter_0000006" / "meta.json"));
  REQUIRE(meta["iteration"] == 6);
  REQUIRE(meta["optimizer_steps"] == 2);

  // finetune: the weights only; iteration 0, the data from its start
  TrainConfig tune = c;
  tune.finetune = true;
  tune.load = c.save;
  tune.train_iters = 2;
  tune.save = (dir / "tuned").string();
  tune.metrics_file = (dir / "tuned.jsonl").string();
  run_training(tune, quiet_options());
  nlohmann::json tuned = nlohmann::json::parse(slurp(dir / "tuned" / "iter_0000002" / "meta.json"));
  REQUIRE(tuned["iteration"] == 2);
  REQUIRE(tuned["consumed_samples"] == 8);
  REQUIRE(tuned["optimizer_steps"] == 2);
  fs::remove_all(dir);
}

TEST_CASE("log_optimizer_states_to_tensorboard: norms of AdamW's moments and the weights", "[train][deepspeed]") {
  TrainConfig c;
  c.num_layers = 1;
  c.hidden_size = 8;
  c.num_attention_heads = 2;
  c.num_experts = {"2"};
  c.expert_interval = 1;
  std::unique_ptr<nn::GptModel> model = make_model(c, 50);
  ParameterRegistry& params = model->parameters();
  AdamW adam(params, {});
  double squares[4] = {}, abs_sum[4] = {}, abs_max[4] = {};
  int seed = 0;
  for (int g = 0; g < kNumParamGroups; ++g) {
    ParamGroup group = ParamGroup(g);
    if (!params.flat_values(group).defined()) continue;
    Tensor m = adam.full_moment(AdamW::Moment::ExpAvg, group), v = adam.full_moment(AdamW::Moment::ExpAvgSq, group);
    std::vector<double> mv = testutil::random(m.shape(), DType::F64, 100 + seed++).to_double_vector();
    std::vector<double> vv = testutil::random(v.shape(), DType::F64, 200 + seed++, 0, 2).to_double_vector();
    m.copy_from(Tensor::from_vector(mv, m.shape()).to(m.dtype()));
    v.copy_from(Tensor::from_vector(vv, v.shape()).to(v.dtype()));
    std::vector<double> w = params.flat_values(group).to_double_vector();
    std::vector<double> vs = v.to_double_vector(), ms = m.to_double_vector();
    std::vector<size_t> entries;  // the parameters' entries of the flat buffers (not their padding)
    for (const Parameter& p : params.all())
      if (p.group() == group)
        for (int64_t i = 0; i < p.var.value().numel(); ++i) entries.push_back(size_t(p.offset + i));
    for (size_t i : entries) {
      double x[4] = {vs[i], std::sqrt(vs[i]), ms[i], w[i]};
      for (int k = 0; k < 4; ++k) {
        squares[k] += x[k] * x[k];
        abs_sum[k] += std::fabs(x[k]);
        abs_max[k] = std::max(abs_max[k], std::fabs(x[k]));
      }
    }
  }
  OptimizerStateNorms n = optimizer_state_norms(params, adam, nullptr, nullptr);
  REQUIRE(n.names.size() == 12);
  const char* kinds[4] = {"variance", "variance_sqrt", "momentum", "weight"};
  for (int k = 0; k < 4; ++k) {
    REQUIRE(n.names[size_t(3 * k)] == std::string(kinds[k]) + "_l2");
    REQUIRE(n.values[size_t(3 * k)] == Approx(std::sqrt(squares[k])).epsilon(1e-12));
    REQUIRE(n.values[size_t(3 * k + 1)] == Approx(abs_sum[k]).epsilon(1e-12));
    REQUIRE(n.values[size_t(3 * k + 2)] == Approx(abs_max[k]).epsilon(1e-12));
  }
}
