// `moetrain upcycle --load DENSE_CKPT --save DIR --num-experts N [--topk K] [--key value ...]`:
// sparse upcycling (train/upcycle.h). The dense checkpoint's configuration with the overrides
// becomes the MoE model's; every expert starts as a copy of its layer's dense MLP, the gates as
// training initialises them; DIR gets a checkpoint at iteration 0 without optimizer state, which
// `moetrain train MOE.yaml --load DIR` continues with AdamW afresh.
#include "train/upcycle.h"

#include <cstdio>

#include "tools/args.h"
#include "tools/command.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/model_config.h"

namespace mt::cli {

int run_upcycle(const Args& args) {
  ArgParser p("upcycle", {"load", "save"}, {"help"});
  p.pass_unknown_flags();
  p.parse(args);
  if (p.flag("help") || !p.positional().empty() || p.get("load", "").empty() || p.get("save", "").empty()) {
    std::printf(
        "usage: moetrain upcycle --load DENSE_CKPT --save DIR --num-experts N [--topk K] [--key value ...]\n\n"
        "Sparse upcycling: an MoE model started from a dense checkpoint. The checkpoint's configuration\n"
        "with the given keys (--num-experts 8 --topk 2 --expert-interval 2, --mlp-type residual, ...)\n"
        "is the MoE model's; every expert (and a residual MoE's MLP) is a copy of its layer's dense MLP,\n"
        "the gates are initialised as training would. DIR gets iter_0000000 (weights and config.yaml,\n"
        "no optimizer state); continue with `moetrain train DIR/iter_0000000/config.yaml --load DIR\n"
        "--save RUN`. With top-k >= 2 and no token dropping the upcycled model computes the dense one's\n"
        "function. (moe_use_upcycling: true does the same inside `moetrain train`.) docs/moe.md.\n");
    return p.flag("help") ? 0 : 1;
  }
  std::string dense = train::resolve_checkpoint(p.get("load", ""));
  MT_CHECK(!dense.empty(), "upcycle: '", p.get("load", ""), "' holds no checkpoint yet");
  train::TrainConfig cfg = train::load_config_file(train::checkpoint_config_path(dense));
  MT_CHECK(!cfg.is_moe(), "upcycle: '", dense, "' is already an MoE checkpoint (num_experts ",
           cfg.num_experts.empty() ? "" : cfg.num_experts[0], "); upcycle a dense one");
  std::vector<std::string> extra = train::apply_overrides(cfg, p.rest());
  MT_CHECK(extra.empty(), "unexpected argument '", extra.empty() ? "" : extra[0], "'");
  cfg.load.clear();
  cfg.save = p.get("save", "");
  cfg.moe_use_upcycling = false;  // (already done: the saved config resumes as an MoE run)
  train::check_upcycling_config(cfg);
  train::validate(cfg);
  std::unique_ptr<nn::GptModel> model = train::make_model(cfg, train::config_tokenizer(cfg).vocab_size());
  train::UpcycleCounts n = train::upcycle_from_dense(dense, model->parameters());
  std::string dir =
      train::save_checkpoint(cfg.save, train::TrainState{}, model->parameters(), nullptr, train::to_yaml(cfg), 0);
  std::printf(
      "upcycled %s: %.2fM parameters (%.2fM active per token); %lld tensors copied (every expert a copy of its "
      "layer's dense MLP), %lld initialised (the gates)\nwrote %s\ncontinue with: moetrain train %s/config.yaml "
      "--load %s --save RUN_FOLDER\n",
      dense.c_str(), double(train::count_parameters(cfg, train::config_tokenizer(cfg).vocab_size())) / 1e6,
      double(train::count_active_parameters(cfg, train::config_tokenizer(cfg).vocab_size())) / 1e6, (long long)n.copied,
      (long long)n.initialised, dir.c_str(), dir.c_str(), cfg.save.c_str());
  return 0;
}

}  // namespace mt::cli
