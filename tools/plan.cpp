// `moetrain plan CONFIG.yaml [--ranks N] [--memory-gb X] [--ranks-per-node N] [--measure] [--key value ...]`:
// the memory one rank of that training job needs (train/memory_plan.h), before anything is
// allocated, against this machine's memory or another's.
#include <cmath>
#include <cstdio>

#include "parallel/communicator.h"
#include "tools/args.h"
#include "tools/command.h"
#include "train/config.h"
#include "train/deepspeed_config.h"
#include "train/memory_measure.h"
#include "train/memory_plan.h"

namespace mt::cli {
namespace {

// --measure: every rank's measured bytes against the plan (rank 0 prints); true when every rank's
// step peak is within 10% of the plan.
bool measure_against_plan(const train::TrainConfig& cfg, const train::MemoryPlan& plan) {
  MT_CHECK(cfg.load_teacher.empty(), "plan --measure: the measuring run trains on random tokens without loading a ",
           "MoS teacher (load_teacher '", cfg.load_teacher, "'); measure the student alone (the plan's teacher ",
           "lines are checked by tests/train/test_memory_plan.cpp)");
  parallel::Communicator& world = parallel::world();
  train::MeasuredMemory m = train::measure_training_memory(cfg, world);
  Tensor mine = Tensor::from_vector(std::vector<double>{m.persistent, m.peak}, {2});
  Tensor all = Tensor::empty({2 * int64_t(world.size())}, DType::F64);
  world.all_gather(mine, all);
  double planned_peak = plan.persistent() + plan.activations;
  bool within = true;
  std::vector<double> v = all.to_double_vector();
  if (world.rank() == 0)
    std::printf(
        "\nmeasured: one warm-up step, then one step on random tokens; the allocator's bytes\n"
        "  rank   persistent GB (planned)      step peak GB (planned)   peak vs plan\n");
  for (int r = 0; r < world.size(); ++r) {
    double persistent = v[size_t(2 * r)], peak = v[size_t(2 * r + 1)], off = (planned_peak - peak) / peak;
    within = within && std::fabs(off) <= 0.10;
    if (world.rank() == 0)
      std::printf("  %4d   %10.3f (%10.3f)   %10.3f (%10.3f)   %+6.1f%%\n", r, persistent / 1e9,
                  plan.persistent() / 1e9, peak / 1e9, planned_peak / 1e9, 100.0 * off);
  }
  if (world.rank() == 0)
    std::printf("%s\n", within ? "every rank's step peak within 10% of the plan"
                               : "a rank's step peak is more than 10% off the plan: please report it with this output");
  return within;
}

}  // namespace

int run_plan(const Args& args) {
  ArgParser p("plan", {"ranks", "memory-gb", "ranks-per-node"}, {"measure", "help"});
  p.pass_unknown_flags();
  p.parse(args);
  if (p.flag("help") || p.positional().size() != 1) {
    std::printf(
        "usage: moetrain plan CONFIG.yaml [--ranks N] [--memory-gb X] [--ranks-per-node N] [--measure] [--key value "
        "...]\n\n"
        "The memory one rank of `moetrain train CONFIG.yaml` needs, computed from the configuration before\n"
        "anything is allocated: weights (f32 master), their bf16/fp16 copy, gradients, AdamW state (ZeRO 1\n"
        "and 2 partition them), a MoS teacher, the activations of one micro-batch at their peak (the MoE\n"
        "layers' capacity bound; dropless: also the worst case) and communication buffers; the total\n"
        "against the device, with what would make it fit when it does not (exit status 3). docs/plan.md.\n\n"
        "  --ranks N           processes of the job (1): tensor x data parallel, experts over ep of them\n"
        "  --memory-gb X       plan for X GB per rank (e.g. 80 for an 80 GB GPU) instead of this machine\n"
        "  --ranks-per-node N  device cpu: ranks sharing this host's RAM (default: all of them)\n"
        "  --key value         any training key overrides the config (--zero-stage 1 --micro-batch-size 2)\n"
        "  --measure           then train two steps on random tokens (under mpirun: the job's layout on\n"
        "                      every rank) and print each rank's measured bytes against the plan\n");
    return p.flag("help") ? 0 : 1;
  }
  train::TrainConfig cfg = train::load_config_file(p.positional()[0]);
  std::vector<std::string> extra = train::apply_overrides(cfg, p.rest());
  MT_CHECK(extra.empty(), "unexpected argument '", extra.empty() ? "" : extra[0], "'");
  train::apply_deepspeed_config(cfg);
  // under mpirun the job's own size, unless planning for another
  int64_t ranks = p.get_int("ranks", parallel::world().size());
  MT_CHECK(ranks > 0, "--ranks must be positive, got ", ranks);
  bool measure = p.flag("measure");
  MT_CHECK(!measure || ranks == parallel::world().size(), "plan --measure runs the job's layout: launch it with ",
           "mpirun -np ", ranks, " (this process has ", parallel::world().size(), " rank(s)), or drop --ranks");
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
  bool lead = parallel::world().rank() == 0;
  train::MemoryPlan plan = train::plan_memory(cfg, options);
  std::string refusal = train::does_not_fit_message(cfg, options, device);
  if (lead) {
    std::printf("%s", train::format_memory_plan(plan, device).c_str());
    std::printf("\n%s\n%s", refusal.empty() ? "fits" : refusal.c_str(), note.c_str());
  }
  if (measure) {
    MT_CHECK(note.empty(), "plan --measure: ", note);
    if (!measure_against_plan(cfg, plan)) return 4;  // 4: measured more than 10% off
  }
  return refusal.empty() ? 0 : 3;  // 3: does not fit (1: an error)
}

}  // namespace mt::cli
