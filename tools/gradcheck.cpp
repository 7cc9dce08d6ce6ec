// `moetrain gradcheck CONFIG.yaml [--params GLOB] [--samples N] [--seed S] [--key value ...]`:
// the model of a training config in float64, its backward against finite differences
// (toolkit/model_gradcheck.h). Exit status 0 when every sampled entry is within the tolerance.
#include <cstdio>

#include "parallel/communicator.h"
#include "toolkit/model_gradcheck.h"
#include "tools/args.h"
#include "tools/command.h"
#include "train/config.h"

namespace mt::cli {

int run_gradcheck(const Args& args) {
  ArgParser p("gradcheck", {"params", "samples", "seed", "batch", "tokens", "tolerance", "eps", "break-backward"},
              {"help"});
  p.pass_unknown_flags();
  p.parse(args);
  if (p.flag("help") || p.positional().size() != 1) {
    std::printf(
        "usage: moetrain gradcheck CONFIG.yaml [--params GLOB] [--samples N] [--seed S] [--key value ...]\n\n"
        "Builds the model of CONFIG.yaml (dense, MoE, PR-MoE; a MoS/KD student with its teacher's KD term)\n"
        "in float64 on a small batch of random tokens, runs the forward and the hand-written backward,\n"
        "and compares every parameter tensor's gradient with central finite differences on N sampled\n"
        "entries (every other one among the entries with a non-zero gradient). MoE routing decisions are\n"
        "held fixed during the perturbations; an entry whose perturbation would flip one is skipped.\n\n"
        "  --params GLOB       only parameters matching it, e.g. 'layers.1.mlp.*' (quote it)\n"
        "  --samples N         entries per parameter tensor (4)\n"
        "  --seed S            tokens, labels and sampled entries (1234)\n"
        "  --batch B, --tokens T   the batch: B sequences of T tokens (2, 8)\n"
        "  --tolerance X       largest relative error allowed (1e-6); --eps E: the probe step (1e-5)\n"
        "  --key value         any training key overrides the config (--num-experts 4 8 --topk 2)\n"
        "  --break-backward OP test only: corrupt OP's backward (combine or gate_weights) by 1%%\n\n"
        "Under mpirun the parallel layout of the config (--tensor-model-parallel-size, --moe-expert-parallel-size,\n"
        "data parallelism over the other ranks) runs too: its synchronised gradients, gathered to whole\n"
        "tensors, are compared with the single-process model's on the same batch (column \"parallel\").\n\n"
        "Prints a table per parameter (checked, skipped, max abs and relative error, the worst entry's\n"
        "analytic and numeric gradient); exits 1 when any error exceeds the tolerance. docs/math/.\n");
    return p.flag("help") ? 0 : 1;
  }
  train::TrainConfig cfg = train::load_config_file(p.positional()[0]);
  std::vector<std::string> extra = train::apply_overrides(cfg, p.rest());
  MT_CHECK(extra.empty(), "unexpected argument '", extra.empty() ? "" : extra[0], "'");
  toolkit::ModelGradcheckOptions o;
  o.params_glob = p.get("params");
  o.samples = p.get_int("samples", o.samples);
  o.seed = uint64_t(p.get_int("seed", int64_t(o.seed)));
  o.batch = p.get_int("batch", o.batch);
  o.tokens = p.get_int("tokens", o.tokens);
  o.tolerance = p.get_double("tolerance", o.tolerance);
  o.eps = p.get_double("eps", o.eps);
  if (p.has("break-backward")) {
    o.break_backward = p.get("break-backward");
    std::printf("(test mode: the backward of %s is deliberately wrong by 1%%)\n", o.break_backward.c_str());
  }
  toolkit::ModelGradcheckReport report = toolkit::gradcheck_model(cfg, o);
  if (parallel::world().rank() == 0) std::printf("%s", toolkit::format_gradcheck_report(report).c_str());
  return report.ok ? 0 : 1;
}

}  // namespace mt::cli
