// Training configuration: YAML + command-line overrides, and one clear error for each mistake.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "test_folders.h"
#include "train/config.h"
#include "train/config_yaml.h"
#include "train/optimizer.h"

using namespace mt;
using namespace mt::train;
using Catch::Contains;

namespace {
// The file moetrain_cfg_<name>.yaml in this process's temporary folder (tests/test_folders.h), holding `text`.
const std::filesystem::path& config_dir() {
  static const std::filesystem::path dir = testfolders::fresh_temp_dir("moetrain_cfg");
  return dir;
}
std::string write_yaml(const std::string& name, const std::string& text) {
  std::string path = (config_dir() / ("moetrain_cfg_" + name + ".yaml")).string();
  std::ofstream(path) << text;
  return path;
}
TrainConfig valid_config() {
  TrainConfig c;
  c.micro_batch_size = 2;
  c.train_iters = 10;
  c.data_path = {"data/x"};
  return c;
}
}  // namespace

TEST_CASE("a YAML config with command-line overrides", "[train][config]") {
  std::string path = write_yaml("ok",
                                "num_layers: 4\nhidden_size: 128\nlr: 3.0e-4\ndata_path: [0.3, a, 0.7, b]\n"
                                "train_tokens: 300e9\neod_mask_loss: true\nsplit: 98,2,0\n");
  TrainConfig c = load_config_file(path);
  REQUIRE(c.num_layers == 4);
  REQUIRE(c.lr == 3.0e-4);
  REQUIRE(c.train_tokens == 300000000000);
  REQUIRE(c.data_path == std::vector<std::string>{"0.3", "a", "0.7", "b"});
  REQUIRE(c.eod_mask_loss);
  REQUIRE(c.split == "98,2,0");
  std::vector<std::string> rest = apply_overrides(
      c, {"--lr", "2e-4", "--train-iters=100", "--data-path", "x", "--eod-mask-loss", "false", "extra"});
  REQUIRE(c.lr == 2e-4);
  REQUIRE(c.train_iters == 100);
  REQUIRE(c.data_path == std::vector<std::string>{"x"});
  REQUIRE_FALSE(c.eod_mask_loss);
  REQUIRE(rest == std::vector<std::string>{"extra"});
  apply_overrides(c, {"--eod-mask-loss"});  // a bare boolean flag, as Megatron's store_true
  REQUIRE(c.eod_mask_loss);
  // The printed configuration loads back to the same values.
  std::string saved = write_yaml("roundtrip", to_yaml(c));
  TrainConfig again = load_config_file(saved);
  REQUIRE(to_yaml(again) == to_yaml(c));
}

TEST_CASE("config errors: unknown key, wrong type, bad YAML", "[train][config][errors]") {
  REQUIRE_THROWS_WITH(load_config_file(write_yaml("typo", "num_layer: 4\n")),
                      Contains("moetrain_cfg_typo.yaml:1") && Contains("unknown key 'num_layer'") &&
                          Contains("did you mean 'num_layers'"));
  REQUIRE_THROWS_WITH(
      load_config_file(write_yaml("type", "seed: 1\nhidden_size: wide\n")),
      Contains("moetrain_cfg_type.yaml:2") && Contains("hidden_size expects an integer") && Contains("'wide'"));
  REQUIRE_THROWS_WITH(load_config_file(write_yaml("float", "lr: 1e-3x\n")), Contains("lr expects a number"));
  REQUIRE_THROWS_WITH(load_config_file(write_yaml("list", "lr: [1, 2]\n")), Contains("lr expects a single value"));
  REQUIRE_THROWS_WITH(load_config_file(write_yaml("yaml", "lr: [1, 2\n")), Contains("not valid YAML"));
  REQUIRE_THROWS_WITH(load_config_file("/nonexistent/cfg.yaml"), Contains("'/nonexistent/cfg.yaml'"));
  TrainConfig c;
  REQUIRE_THROWS_WITH(apply_overrides(c, {"--lr-decay-styl", "cosine"}),
                      Contains("unknown option '--lr-decay-styl'") && Contains("did you mean '--lr-decay-style'"));
  REQUIRE_THROWS_WITH(apply_overrides(c, {"--train-iters", "many"}), Contains("--train_iters") && Contains("integer"));
}

TEST_CASE("config files: empty, a folder, a key given twice", "[train][config][errors]") {
  std::string empty = write_yaml("empty", "");
  REQUIRE_THROWS_WITH(load_config_file(empty),
                      Contains("config file '" + empty + "' is empty") && Contains("key: value"));
  REQUIRE_THROWS_WITH(load_config_file(write_yaml("comments", "# nothing but a comment\n")), Contains("is empty"));
  std::filesystem::path folder = config_dir() / "folder.yaml";
  std::filesystem::create_directories(folder);
  REQUIRE_THROWS_WITH(load_config_file(folder.string()),
                      Contains("config file '" + folder.string() + "'") && Contains("is a folder"));
  REQUIRE_THROWS_WITH(load_config_file(write_yaml("twice", "lr: 1e-3\nnum_layers: 2\nlr: 2e-3\n")),
                      Contains("moetrain_cfg_twice.yaml:3: key 'lr' is given twice (lines 1 and 3)"));
  // in any mapping of a YAML file, as sweep files nest them
  REQUIRE_THROWS_WITH(
      load_yaml_file(write_yaml("nested", "grid:\n  lr: [1, 2]\n  seed: [1]\n  lr: [3]\n"), "sweep file"),
      Contains("moetrain_cfg_nested.yaml:4: key 'lr' is given twice (lines 2 and 4)"));
  REQUIRE_NOTHROW(load_yaml_file(write_yaml("same_key_apart", "a:\n  lr: 1\nb:\n  lr: 2\n"), "sweep file"));
}

TEST_CASE("config contradictions are refused with the numbers involved", "[train][config][errors]") {
  REQUIRE_NOTHROW(validate(valid_config()));
  TrainConfig c = valid_config();
  c.seq_length = 2048;
  c.max_position_embeddings = 1024;
  REQUIRE_THROWS_WITH(validate(c), Contains("seq_length (2048)") && Contains("max_position_embeddings (1024)"));
  c = valid_config();
  c.global_batch_size = 7;
  REQUIRE_THROWS_WITH(validate(c, 2), Contains("global_batch_size (7)") && Contains("= 4"));
  c = valid_config();
  c.train_iters = 0;
  REQUIRE_THROWS_WITH(validate(c), Contains("train_iters, train_tokens or train_samples"));
  c = valid_config();
  c.train_samples = 1000;
  REQUIRE_THROWS_WITH(validate(c), Contains("train_samples or train_iters, not both"));
  c = valid_config();
  c.num_attention_heads = 5;
  REQUIRE_THROWS_WITH(validate(c), Contains("num_attention_heads (5)") && Contains("hidden_size (768)"));
  c = valid_config();
  c.min_lr = 1;
  REQUIRE_THROWS_WITH(validate(c), Contains("min_lr"));
  c = valid_config();
  c.lr_decay_style = "exp";
  REQUIRE_THROWS_WITH(validate(c), Contains("'exp'"));
  c = valid_config();
  c.micro_batch_size = 0;
  REQUIRE_THROWS_WITH(validate(c), Contains("micro_batch_size"));
  c = valid_config();
  c.data_path.clear();
  REQUIRE_THROWS_WITH(validate(c), Contains("data_path"));
  // fp16's dynamic scale would start below its floor
  c = valid_config();
  c.precision = "fp16";
  c.initial_loss_scale = 8;
  c.min_loss_scale = 1024;
  REQUIRE_THROWS_WITH(validate(c), Contains("initial_loss_scale (8) is below min_loss_scale (1024)"));
  c.loss_scale = 128;  // a constant scale: the dynamic keys are unused
  REQUIRE_NOTHROW(validate(c));
  c.loss_scale = 0;
  c.precision = "bf16";
  REQUIRE_NOTHROW(validate(c));
  c.precision = "auto";
  REQUIRE_NOTHROW(validate(c));
  c.precision = "fp8";
  REQUIRE_THROWS_WITH(validate(c), Contains("precision must be fp32, bf16, fp16 or auto, got 'fp8'"));
  // the balancing losses (Megatron-Core's names): moe_aux_loss_coeff is moe_loss_coeff
  c = valid_config();
  apply_overrides(c, {"--moe-aux-loss-coeff", "0.02", "--moe-router-load-balancing-type", "seq_aux_loss"});
  CHECK(c.moe_loss_coeff == 0.02);
  REQUIRE_NOTHROW(validate(c));
  c.moe_router_load_balancing_type = "global_aux_loss";
  REQUIRE_NOTHROW(validate(c));
  c.moe_router_load_balancing_type = "sinkhorn";
  REQUIRE_THROWS_WITH(validate(c), Contains("aux_loss, seq_aux_loss, global_aux_loss or none, got 'sinkhorn'"));
}

TEST_CASE("expert-parallel sizes that do not fit are refused", "[train][config][errors]") {
  TrainConfig c = valid_config();
  c.num_experts = {"8"};
  c.moe_expert_parallel_size = 2;
  c.global_batch_size = 0;
  REQUIRE_NOTHROW(validate(c, 4));
  REQUIRE_THROWS_WITH(validate(c, 3), Contains("moe_expert_parallel_size (2) must divide the 3 data-parallel ranks"));
  c.num_experts = {"6"};
  c.moe_expert_parallel_size = 4;
  REQUIRE_THROWS_WITH(validate(c, 4), Contains("6 experts cannot be spread over moe_expert_parallel_size 4"));
  c.num_experts = {"8"};
  c.save = "runs/x";  // checkpoints hold every expert: saving and loading work under any layout
  REQUIRE_NOTHROW(validate(c, 4));
}

TEST_CASE("Megatron's learning-rate schedule", "[train][schedule]") {
  TrainConfig c = valid_config();
  c.lr = 1.0;
  c.min_lr = 0.1;
  c.lr_warmup_iters = 10;
  c.lr_decay_style = "cosine";
  LrSchedule s(c, 110);
  REQUIRE(s.lr(0, 0) == 0.0);  // as Megatron: the first iteration runs at 0 during warmup
  REQUIRE(s.lr(5, 0) == Approx(0.5));
  REQUIRE(s.lr(10, 0) == Approx(1.0));
  REQUIRE(s.lr(60, 0) == Approx(0.1 + 0.9 * 0.5));
  REQUIRE(s.lr(110, 0) == Approx(0.1));
  REQUIRE(s.lr(500, 0) == Approx(0.1));
  c.lr_decay_style = "linear";
  REQUIRE(LrSchedule(c, 110).lr(60, 0) == Approx(0.55));
  // Token-based: warmup 100 tokens, decay to 1100 tokens.
  c.lr_warmup_iters = 0;
  c.lr_warmup_tokens = 100;
  c.lr_decay_tokens = 1100;
  c.lr_decay_style = "cosine";
  LrSchedule t(c, 1);
  REQUIRE(t.lr(999, 50) == Approx(0.5));
  REQUIRE(t.lr(0, 600) == Approx(0.1 + 0.9 * 0.5));
  REQUIRE(t.lr(0, 2000) == Approx(0.1));
}

TEST_CASE("MoE placement: expert_interval and pyramid num_experts", "[train][config][moe]") {
  TrainConfig c = valid_config();
  c.num_layers = 6;
  apply_overrides(c, {"--num-experts", "32", "32", "64", "--expert-interval", "2", "--mlp-type", "residual"});
  REQUIRE(c.num_experts == std::vector<std::string>{"32", "32", "64"});
  REQUIRE(c.experts_per_layer() == std::vector<int64_t>{1, 32, 1, 32, 1, 64});  // layers 2, 4, 6 (1-based)
  REQUIRE(c.is_moe());
  c.num_experts = {"8"};
  REQUIRE(c.experts_per_layer() == std::vector<int64_t>{1, 8, 1, 8, 1, 8});
  c.expert_interval = 3;
  REQUIRE(c.experts_per_layer() == std::vector<int64_t>{1, 1, 8, 1, 1, 8});
  c.expert_interval = 2;
  c.num_experts = {"32", "64"};
  REQUIRE_THROWS_WITH(validate(c),
                      Contains("num_experts has 2 entries") && Contains("3 MoE layers") && Contains("layers 2, 4, 6"));
  c.num_experts = {"4"};
  c.topk = 5;
  REQUIRE_THROWS_WITH(validate(c), Contains("topk (5)"));
  c.topk = 1;
  c.mlp_type = "pyramid";
  REQUIRE_THROWS_WITH(validate(c), Contains("mlp_type") && Contains("'pyramid'"));
  c.mlp_type = "standard";
  c.num_experts = {"1"};
  REQUIRE_FALSE(c.is_moe());
}
