// End-to-end training: the model's gradients, AdamW against a plain loop, exact resume, and the
// checkpoint's corruption checks.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/gradcheck.h"
#include "autograd/tape.h"
#include "nn/gpt.h"
#include "runtime/emulated_cuda.h"
#include "runtime/ops.h"
#include "tiny_gpt.h"
#include "train/checkpoint.h"
#include "train/expert_bias.h"
#include "train/interval_log.h"
#include "train/model_config.h"
#include "train/safetensors.h"
#include "train/trainer.h"
#include "train/upcycle.h"
#include "training_fixtures.h"

using namespace mt;
using namespace mt::train;
using namespace trainfix;
namespace fs = std::filesystem;
using Catch::Contains;

TEST_CASE("GPT model gradients match finite differences (f64, dropout on)", "[train][model][gradcheck]") {
  nn::GptConfig mc = testutil::tiny_gpt();
  mc.hidden_size = 8;
  mc.ffn_hidden_size = 12;
  mc.max_position_embeddings = 6;
  mc.padded_vocab_size = 11;
  mc.hidden_dropout = 0.1;
  mc.attention_dropout = 0.2;
  nn::GptModel model(mc);
  Tensor tokens = Tensor::from_vector(std::vector<int32_t>{1, 5, 7, 2, 10, 0, 3, 3, 9, 4}, {2, 5});
  Tensor labels = Tensor::from_vector(std::vector<int32_t>{5, 7, 2, 10, 0, 3, 9, 4, 6, 1}, {2, 5});
  Tensor mask = Tensor::from_vector(std::vector<double>{1, 1, 0, 1, 1, 1, 1, 1, 1, 0}, {2, 5});
  std::vector<Variable> params;
  for (const Parameter& p : model.parameters().all()) params.push_back(p.var);
  GradcheckOptions opt;
  opt.max_entries_per_input = 8;
  GradcheckResult r = gradcheck(
      [&](const std::vector<Variable>&) {
        return model.loss(tokens, labels, mask, {true, 12});
      },
      params, opt);
  INFO(r.summary());
  REQUIRE(r.ok);
}

TEST_CASE("a sample's dropout masks do not depend on its micro-batch", "[train][model]") {
  nn::GptConfig mc = testutil::tiny_gpt();
  mc.dtype = DType::F32;
  mc.init_method_std = 0.02;
  mc.max_position_embeddings = 8;
  mc.padded_vocab_size = 32;
  mc.hidden_dropout = 0.3;
  mc.attention_dropout = 0.3;
  nn::GptModel model(mc);
  Tensor both = Tensor::from_vector(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 6});
  Tensor second = Tensor::from_vector(std::vector<int32_t>{7, 8, 9, 10, 11, 12}, {1, 6});
  NoGradGuard no_grad;
  // Samples 100 and 101 together, and sample 101 alone: the same logits for sample 101.
  std::vector<double> a = model.logits(both, {true, 100}).value().to_double_vector();
  std::vector<double> b = model.logits(second, {true, 101}).value().to_double_vector();
  // (Equal up to float rounding: CBLAS may sum in another order for another batch size; a
  // different mask would change the logits by O(1).)
  auto max_diff = [](const std::vector<double>& x, const std::vector<double>& y, size_t from) {
    double m = 0;
    for (size_t i = 0; i < y.size(); ++i) m = std::max(m, std::fabs(x[from + i] - y[i]));
    return m;
  };
  REQUIRE(max_diff(a, b, b.size()) < 1e-5);
  std::vector<double> c = model.logits(second, {true, 102}).value().to_double_vector();
  REQUIRE(max_diff(c, b, 0) > 1e-3);  // another sample index, another mask
}

TEST_CASE("the AdamW kernel matches a plain loop", "[train][optimizer]") {
  Tensor w = Tensor::from_vector(std::vector<double>{1.0, -2.0, 0.5}, {3}),
         g = Tensor::from_vector(std::vector<double>{0.1, 0.2, -0.3}, {3});
  Tensor m = Tensor::from_vector(std::vector<double>{0.01, 0.0, -0.02}, {3}),
         v = Tensor::from_vector(std::vector<double>{1e-4, 2e-4, 0.0}, {3});
  AdamWArgs a;
  a.lr = 0.1;
  a.beta1 = 0.9;
  a.beta2 = 0.95;
  a.eps = 1e-8;
  a.weight_decay = 0.1;
  a.correction1 = 1 - std::pow(0.9, 3);
  a.correction2 = 1 - std::pow(0.95, 3);
  std::vector<double> w0 = w.to_double_vector(), g0 = g.to_double_vector(), m0 = m.to_double_vector(),
                      v0 = v.to_double_vector();
  ops::adamw_step(w, g, m, v, a);
  for (int i = 0; i < 3; ++i) {
    double mi = 0.9 * m0[i] + 0.1 * g0[i], vi = 0.95 * v0[i] + 0.05 * g0[i] * g0[i];
    double wi = w0[i] - 0.1 * ((mi / a.correction1) / (std::sqrt(vi / a.correction2) + 1e-8) + 0.1 * w0[i]);
    REQUIRE(w.to_double_vector()[i] == Approx(wi).epsilon(1e-14));
    REQUIRE(m.to_double_vector()[i] == Approx(mi).epsilon(1e-14));
  }
}

TEST_CASE("training resumes exactly: 20 straight = 10 + resume + 10", "[train][resume][slow]") {
  fs::path straight = fresh_dir("straight"), split = fresh_dir("split");
  TrainerOptions quiet = quiet_options();
  TrainSummary a = run_training(tiny_run(straight), quiet);
  REQUIRE(a.iterations == 20);

  TrainConfig first = tiny_run(split);
  TrainerOptions stop = quiet;
  stop.stop_after_iters = 10;
  TrainSummary b = run_training(first, stop);
  REQUIRE(b.iterations == 10);
  REQUIRE(fs::exists(split / "ckpt" / "iter_0000010" / "model.safetensors"));
  TrainConfig second = tiny_run(split);
  second.load = second.save;
  TrainSummary c = run_training(second, quiet);
  REQUIRE(c.iterations == 20);

  REQUIRE(train_losses(straight / "metrics.jsonl") == train_losses(split / "metrics.jsonl"));
  REQUIRE(slurp(straight / "ckpt" / "iter_0000020" / "model.safetensors") ==
          slurp(split / "ckpt" / "iter_0000020" / "model.safetensors"));
  REQUIRE(slurp(straight / "ckpt" / "iter_0000020" / "optimizer.safetensors") ==
          slurp(split / "ckpt" / "iter_0000020" / "optimizer.safetensors"));
  // The loss went down over the 20 iterations.
  std::vector<double> losses = train_losses(straight / "metrics.jsonl");
  REQUIRE(losses.back() < losses.front() - 1.0);
  fs::remove_all(straight);
  fs::remove_all(split);
}

TEST_CASE("checkpoints every save_interval, keeping the last keep_last_n", "[train][checkpoint]") {
  fs::path dir = fresh_dir("keep");
  TrainConfig cfg = tiny_run(dir);
  cfg.train_iters = 5;
  cfg.lr_warmup_iters = 1;
  cfg.save_interval = 2;
  cfg.keep_last_n = 2;
  cfg.eval_iters = 0;
  TrainerOptions quiet = quiet_options();
  run_training(cfg, quiet);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir / "ckpt"))
    if (e.is_directory()) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  REQUIRE(names == std::vector<std::string>{"iter_0000004", "iter_0000005"});  // saved at 2, 4 and the end
  REQUIRE(slurp(dir / "ckpt" / "latest") == "iter_0000005\n");
  REQUIRE(slurp(dir / "ckpt" / "iter_0000005" / "config.yaml").find("keep_last_n: 2") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("damaged checkpoints are refused with the file named", "[train][checkpoint][errors]") {
  fs::path dir = fresh_dir("damaged");
  TrainConfig cfg = tiny_run(dir);
  cfg.train_iters = 2;
  cfg.lr_warmup_iters = 1;
  cfg.eval_iters = 0;
  TrainerOptions quiet = quiet_options();
  run_training(cfg, quiet);
  fs::path ckpt = dir / "ckpt" / "iter_0000002";
  REQUIRE(resolve_checkpoint((dir / "ckpt").string()) == ckpt.string());
  REQUIRE(slurp(dir / "ckpt" / "latest") == "iter_0000002\n");

  nn::GptConfig mc = testutil::tiny_gpt();  // the trainer's tiny_run model, in f32
  mc.dtype = DType::F32;
  mc.ffn_hidden_size = 64;
  mc.max_position_embeddings = 16;
  mc.padded_vocab_size = 50304;
  nn::GptModel model(mc);
  AdamW opt(model.parameters(), {});
  REQUIRE(load_checkpoint(ckpt.string(), model.parameters(), &opt).iteration == 2);

  std::string model_file = (ckpt / "model.safetensors").string(), original = slurp(model_file);
  // Truncated.
  std::ofstream(model_file, std::ios::binary) << original.substr(0, original.size() - 100);
  REQUIRE_THROWS_WITH(load_checkpoint(ckpt.string(), model.parameters(), &opt),
                      Contains("model.safetensors") && Contains("truncated"));
  // One flipped byte in the data: the checksum catches it.
  std::string flipped = original;
  flipped[flipped.size() - 5] ^= 0x40;
  std::ofstream(model_file, std::ios::binary) << flipped;
  REQUIRE_THROWS_WITH(load_checkpoint(ckpt.string(), model.parameters(), &opt),
                      Contains("model.safetensors") && Contains("checksum"));
  // A model of another shape.
  std::ofstream(model_file, std::ios::binary) << original;
  nn::GptConfig wider = mc;
  wider.hidden_size = 32;
  nn::GptModel other(wider);
  REQUIRE_THROWS_WITH(
      load_checkpoint(ckpt.string(), other.parameters(), nullptr),
      Contains("embedding.word_embeddings.weight") && Contains("f32[50304,16]") && Contains("f32[50304,32]"));
  // latest naming a missing folder.
  std::ofstream(dir / "ckpt" / "latest") << "iter_0000099\n";
  REQUIRE_THROWS_WITH(resolve_checkpoint((dir / "ckpt").string()), Contains("iter_0000099"));
  REQUIRE_THROWS_WITH(resolve_checkpoint((dir / "nothing").string()), Contains("does not exist"));
  fs::remove_all(dir);
}

TEST_CASE("device: cuda is checked, and without a GPU says so clearly", "[train][device]") {
  fs::path d = fresh_dir("device");
  TrainConfig c = tiny_run(d);
  c.device = "gpu";
  REQUIRE_THROWS_WITH(validate(c), Contains("device must be cpu or cuda, got 'gpu'"));
  c.device = "cuda";
  REQUIRE_NOTHROW(validate(c, 2));      // several ranks: one GPU each (docs/cuda.md)
  if (cuda_device_count() > 0) return;  // (a GPU machine runs the CUDA tests instead)
  if (mt::cuda_emulated()) return;      // (an earlier test in this process emulates the device)
  c.train_iters = 1;
  REQUIRE_THROWS_WITH(run_training(c, quiet_options()), Contains("CUDA"));
  fs::remove_all(d);
}

TEST_CASE("the log's MFU is the model FLOP/s over peak_tflops", "[train][metrics]") {
  fs::path d = fresh_dir("mfu");
  TrainConfig c = tiny_run(d);
  c.train_iters = 2;
  c.lr_warmup_iters = 1;
  c.peak_tflops = 0.5;
  run_training(c, quiet_options());
  std::istringstream in(slurp(d / "metrics.jsonl"));
  int lines = 0;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["split"] != "train") continue;
    ++lines;
    REQUIRE(j.contains("mfu"));
    REQUIRE(j["mfu"].get<double>() == Approx(j["tflops"].get<double>() / 0.5).epsilon(1e-12));
  }
  REQUIRE(lines == 2);
  c.peak_tflops = 0;  // the CPU has no known peak: no MFU
  c.save = (d / "ckpt2").string();
  c.metrics_file = (d / "metrics2.jsonl").string();
  run_training(c, quiet_options());
  REQUIRE(slurp(d / "metrics2.jsonl").find("\"mfu\"") == std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("device cuda's code paths on the emulated device train exactly as the CPU",
          "[train][device][emulated][slow]") {
  // Every host/device transfer of training (batches, masks, MoE index tables, the 16-bit weight
  // copy, losses, metrics, checkpoints, evaluation) runs; a forgotten copy would throw.
  mt::emulate_cuda_on_host();
  fs::path dc = fresh_dir("emulated_cpu"), dg = fresh_dir("emulated_cuda");
  auto config = [](const fs::path& d, const std::string& device) {
    TrainConfig c = tiny_run(d);
    c.num_experts = {"4"};
    c.mlp_type = "residual";
    c.topk = 2;
    c.precision = "bf16";
    c.train_iters = 6;
    c.save_interval = 3;
    c.eval_tasks = {"lambada", "piqa"};
    c.eval_task_data = MOETRAIN_SOURCE_DIR "/assets/eval";
    c.eval_tasks_limit = 3;
    c.device = device;
    return c;
  };
  run_training(config(dc, "cpu"), quiet_options());
  TrainerOptions stop = quiet_options();
  stop.stop_after_iters = 3;
  run_training(config(dg, "cuda"), stop);
  TrainConfig resumed = config(dg, "cuda");
  resumed.load = resumed.save;
  run_training(resumed, quiet_options());
  REQUIRE(train_losses(dc / "metrics.jsonl") == train_losses(dg / "metrics.jsonl"));
  REQUIRE(slurp(dc / "ckpt" / "iter_0000006" / "model.safetensors") ==
          slurp(dg / "ckpt" / "iter_0000006" / "model.safetensors"));
  REQUIRE(slurp(dg / "metrics.jsonl").find("lambada_acc") != std::string::npos);
  fs::remove_all(dc);
  fs::remove_all(dg);
}

TEST_CASE("auxiliary-loss-free balancing: the expert bias moves with the loads, is checkpointed, resumes exactly",
          "[train][moe][expert_bias][slow]") {
  // the update rule: b_e += rate * sign(mean load - load_e), the loads summed over the micro-batches
  std::vector<double> bias(4, 0.0);
  nn::LayerLoadStats loads;
  loads.layer = 1;
  loads.expert_counts = {10, 2, 6, 6};  // mean 6
  update_expert_biases({{1, &bias}}, {loads}, 0.5);
  CHECK(bias == std::vector<double>{-0.5, 0.5, 0.0, 0.0});
  REQUIRE_THROWS_WITH(update_expert_biases({{0, &bias}}, {loads}, 0.5), Contains("no loads of MoE layer 0"));

  fs::path straight = fresh_dir("bias_straight"), split = fresh_dir("bias_split");
  auto config = [](const fs::path& dir) {
    TrainConfig c = tiny_run(dir);
    c.train_iters = 8;
    c.num_experts = {"4"};
    c.moe_router_enable_expert_bias = true;
    c.moe_router_bias_update_rate = 0.01;
    return c;
  };
  TrainerOptions quiet = quiet_options();
  run_training(config(straight), quiet);
  TrainerOptions stop = quiet;
  stop.stop_after_iters = 4;
  run_training(config(split), stop);
  TrainConfig second = config(split);
  second.load = second.save;
  run_training(second, quiet);
  REQUIRE(train_losses(straight / "metrics.jsonl") == train_losses(split / "metrics.jsonl"));
  auto bias_of = [](const fs::path& ckpt) {
    std::ifstream in(ckpt / "meta.json");
    nlohmann::json meta = nlohmann::json::parse(in);
    return meta.at("expert_bias").at("1").get<std::vector<double>>();
  };
  std::vector<double> b = bias_of(straight / "ckpt" / "iter_0000008");
  CHECK(b == bias_of(split / "ckpt" / "iter_0000008"));
  REQUIRE(b.size() == 4);
  // each step moves every bias by -rate, 0 or +rate: 8 steps leave it a multiple of 0.01 in [-0.08, 0.08]
  double moved = 0;
  for (double v : b) {
    CHECK(std::abs(v) <= 0.08 + 1e-12);
    CHECK(std::abs(v / 0.01 - std::round(v / 0.01)) < 1e-9);
    moved += std::abs(v);
  }
  CHECK(moved > 0);
  fs::remove_all(straight);
  fs::remove_all(split);
}

TEST_CASE("sparse upcycling: a top-2 dropless MoE from a dense checkpoint computes the dense loss",
          "[train][moe][upcycle][slow]") {
  fs::path dir = fresh_dir("upcycle");
  TrainConfig dense = tiny_run(dir);
  dense.train_iters = 2;
  dense.lr_warmup_iters = 1;
  TrainerOptions quiet = quiet_options();
  run_training(dense, quiet);
  int64_t vocab = config_tokenizer(dense).vocab_size();
  std::string ckpt = (dir / "ckpt" / "iter_0000002").string();
  std::unique_ptr<nn::GptModel> dense_model = make_model(dense, vocab);
  load_checkpoint(ckpt, dense_model->parameters(), nullptr);

  TrainConfig moe = dense;
  moe.num_experts = {"4"};
  moe.topk = 2;
  moe.disable_moe_token_dropping = true;  // both choices kept: weights w1 + w2 = 1 on copies of one MLP
  REQUIRE_NOTHROW(check_upcycling_config(moe));
  std::unique_ptr<nn::GptModel> moe_model = make_model(moe, vocab);
  UpcycleCounts n = upcycle_from_dense(ckpt, moe_model->parameters());
  CHECK(n.initialised == 1);  // the one MoE layer's gate
  CHECK(n.copied == int64_t(moe_model->parameters().all().size()) - 1);

  Tensor tokens =
      Tensor::from_vector(std::vector<int32_t>{464, 3290, 318, 257, 1332, 11, 290, 340, 1110, 13, 50, 9}, {2, 6});
  Tensor labels =
      Tensor::from_vector(std::vector<int32_t>{3290, 318, 257, 1332, 11, 290, 340, 1110, 13, 50, 9, 7}, {2, 6});
  NoGradGuard no_grad;
  double want = dense_model->loss_parts(tokens, labels, Tensor(), {}).lm_loss;
  double got = moe_model->loss_parts(tokens, labels, Tensor(), {}).lm_loss;
  CHECK(got == Approx(want).epsilon(1e-6));
  // what cannot be upcycled is named
  moe.moe_shared_expert_intermediate_size = 8;
  REQUIRE_THROWS_WITH(check_upcycling_config(moe), Contains("moe_shared_expert_intermediate_size"));
  moe.moe_shared_expert_intermediate_size = 0;
  moe.moe_ffn_hidden_size = 8;
  REQUIRE_THROWS_WITH(check_upcycling_config(moe), Contains("moe_ffn_hidden_size"));
  fs::remove_all(dir);
}

TEST_CASE("router diagnostics: the load's coefficient of variation and the dead experts", "[train][moe][metrics]") {
  LoadBalance even = load_balance({5, 5, 5, 5});
  CHECK(even.cv == 0);
  CHECK(even.dead == 0);
  LoadBalance skewed = load_balance({12, 0, 4, 0});  // mean 4, std sqrt((64 + 16 + 0 + 16) / 4)
  CHECK(skewed.cv == Approx(std::sqrt(24.0) / 4.0).epsilon(1e-12));
  CHECK(skewed.dead == 2);
  IntervalLog log;
  StepResult step;
  step.micro_batches = 1;
  step.seconds = 1;
  step.tokens = 16;
  nn::LayerLoadStats l;
  l.is_moe = true;
  l.layer = 1;
  l.expert_counts = {12, 0, 4, 0};
  step.layers = {l};
  log.add(step);
  IntervalContext c;
  nlohmann::json record = log.render_record(c);
  CHECK(record["moe_layers"][0]["dead_experts"] == 2);
  CHECK(record["moe_layers"][0]["load_cv"].get<double>() == Approx(skewed.cv));
  CHECK(log.render_text(c).find("load cv 1.22, dead 2") != std::string::npos);
  CHECK(!record["moe_layers"][0].contains("drop_cost"));  // (measured at log steps with diagnostics only)
  // the drop cost: the interval's summed loss changes over its rescued tokens
  l.expert_counts = {};
  l.has_drop_cost = true;
  l.drop_cost_sum = 3.0;
  l.drop_cost_tokens = 10;
  step.layers = {l};
  log.add(step);
  l.drop_cost_sum = -1.0;
  l.drop_cost_tokens = 6;
  step.layers = {l};
  log.add(step);
  record = log.render_record(c);
  CHECK(record["moe_layers"][0]["drop_cost"].get<double>() == Approx(2.0 / 16.0));
  CHECK(record["moe_layers"][0]["drop_cost_tokens"] == 16);
  CHECK(log.render_text(c).find("drop cost 0.1250 (16)") != std::string::npos);
}
