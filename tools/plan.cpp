// `moetrain plan CONFIG.yaml [--ranks N] [--memory-gb X] [--ranks-per-node N] [--key value ...]`:
// the memory one rank of that training job needs (train/memory_plan.h), before anything is
// allocated, against this machine's memory or another's.
#include <cstdio>

#include "tools/args.h"
#include "tools/command.h"
#include "train/config.h"
#include "train/deepspeed_config.h"
#include "train/memory_plan.h"

namespace mt::cli {

int run_plan(const Args& args) {
  ArgParser p("plan", {"ranks", "memory-gb", "ranks-per-node"}, {"help"});
  p.pass_unknown_flags();
  p.parse(args);
  if (p.flag("help") || p.positional().size() != 1) {
    std::printf(
        "usage: moetrain plan CONFIG.yaml [--ranks N] [--memory-gb X] [--ranks-per-node N] [--key value ...]\n\n"
        "The memory one rank of `moetrain train CONFIG.yaml` needs, computed from the configuration before\n"
        "anything is allocated: weights (f32 master), their bf16/fp16 copy, gradients, AdamW state (ZeRO 1\n"
        "and 2 partition them), a MoS teacher, the activations of one micro-batch at their peak (the MoE\n"
        "layers' capacity bound; dropless: also the worst case) and communication buffers; the total\n"
        "against the device, with what would make it fit when it does not (exit status 3). docs/plan.md.\n\n"
        "  --ranks N           processes of the job (1): tensor x data parallel, experts over ep of them\n"
        "  --memory-gb X       plan for X GB per rank (e.g. 80 for an 80 GB GPU) instead of this machine\n"
        "  --ranks-per-node N  device cpu: ranks sharing this host's RAM (default: all of them)\n"
        "  --key value         any training key overrides the config (--zero-stage 1 --micro-batch-size 2)\n");
    return p.flag("help") ? 0 : 1;
  }
  train::TrainConfig cfg = train::load_config_file(p.positional()[0]);
  std::vector<std::string> extra = train::apply_overrides(cfg, p.rest());
  MT_CHECK(extra.empty(), "unexpected argument '", extra.empty() ? "" : extra[0], "'");
  train::apply_deepspeed_config(cfg);
  int64_t ranks = p.get_int("ranks", 1);
  MT_CHECK(ranks > 0, "--ranks must be positive, got ", ranks);
  // The layout must be one training accepts; a ZeRO stage it does not accept yet is still planned.
  std::string note;
  try {
    train::validate(cfg, ranks);
  } catch (const Error& e) {
    if (cfg.zero_stage == 0) throw;
    train::TrainConfig stage0 = cfg;
    stage0.zero_stage = 0;
    train::validate(stage0, ranks);
    note = std::string("note: `moetrain train` refuses this configuration as it is: ") + e.what() + "\n";
  }
  train::MemoryPlanOptions options = train::plan_options_for(cfg, ranks, train::config_tokenizer(cfg).vocab_size());
  train::PlanDevice device =
      train::plan_device(cfg, p.get_int("ranks-per-node", ranks), p.get_double("memory-gb", 0.0));
  std::printf("%s", train::format_memory_plan(train::plan_memory(cfg, options), device).c_str());
  std::string refusal = train::does_not_fit_message(cfg, options, device);
  std::printf("\n%s\n%s", refusal.empty() ? "fits" : refusal.c_str(), note.c_str());
  return refusal.empty() ? 0 : 3;  // 3: does not fit (1: an error)
}

}  // namespace mt::cli
