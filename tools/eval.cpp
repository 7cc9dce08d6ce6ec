// `moetrain eval --load DIR [DIR ...] --tasks lambada,piqa,... --task-data DIR [--limit N]
// [--output results.json]`: zero-shot evaluation of checkpoints (eval/harness.h).
#include <cstdio>
#include <fstream>
#include <sstream>

#include "eval/harness.h"
#include "parallel/communicator.h"
#include "runtime/file_util.h"
#include "tools/args.h"
#include "tools/command.h"
#include "toolkit/evaluate_checkpoint.h"

namespace mt::cli {

int run_eval(const Args& args) {
  ArgParser p("eval", {"tasks", "task-data", "limit", "output", "batch-tokens"},
              {"help", "moe-token-dropping", "quiet"}, {"load"});
  p.parse(args);
  if (p.flag("help")) {
    std::printf(
        "usage: moetrain eval --load DIR [DIR ...] [--tasks T1,T2,...] [--task-data DIR] [options]\n\n"
        "Zero-shot evaluation as lm-evaluation-harness 0.2.0 scores it (DeepSpeed-MoE's Table 1).\n\n"
        "  --load DIR ...        checkpoint folders, or save folders (their 'latest'); one table row each\n"
        "  --tasks LIST          comma-separated, default all: %s\n"
        "  --task-data DIR       folder with <task>/<file> (default data/eval; docs/eval.md lists the files)\n"
        "  --limit N             the first N documents of each task (default: all)\n"
        "  --output FILE         also write every metric, stderr, counts and config as JSON\n"
        "  --batch-tokens N      tokens per forward (default 4096)\n"
        "  --moe-token-dropping  keep the capacity limit (default: dropless, as DeepSpeed's harness)\n"
        "  --quiet               no progress lines\n"
        "Under mpirun the requests are split over the ranks.\n",
        join(eval::eval_task_names(), ",").c_str());
    return 0;
  }
  MT_CHECK(!p.get_list("load").empty(), "--load DIR is required (see `moetrain eval --help`)");
  MT_CHECK(p.positional().empty(), "unexpected argument '", p.positional().empty() ? "" : p.positional()[0], "'");
  eval::EvalOptions opt;
  if (p.has("tasks")) {
    std::stringstream ss(p.get("tasks"));
    for (std::string t; std::getline(ss, t, ',');)
      if (!t.empty()) {
        eval::make_eval_task(t);  // an unknown name fails here, before any model is loaded
        opt.tasks.push_back(t);
      }
  } else {
    opt.tasks = eval::eval_task_names();
  }
  MT_CHECK(!opt.tasks.empty(), "--tasks names no task (tasks: ", join(eval::eval_task_names(), ","), ")");
  opt.task_data = p.get("task-data", "data/eval");
  opt.limit = p.get_int("limit", 0);
  MT_CHECK(opt.limit >= 0, "--limit must be 0 (all documents) or more, got ", opt.limit);
  opt.batch_tokens = p.get_int("batch-tokens", 4096);
  MT_CHECK(opt.batch_tokens > 0, "--batch-tokens must be positive, got ", opt.batch_tokens);
  opt.dropless_moe = !p.flag("moe-token-dropping");
  opt.verbose = !p.flag("quiet");
  parallel::Communicator& world = parallel::world();
  if (world.size() > 1) opt.ranks = &world;
  std::vector<eval::CheckpointResults> results;
  for (const std::string& load : p.get_list("load")) results.push_back(toolkit::evaluate_checkpoint(load, opt));
  bool lead = world.rank() == 0;
  bool any = false;
  for (const auto& r : results)
    for (const auto& [name, run] : r.tasks) any |= run.missing.empty();
  if (lead) {
    std::printf("%s", eval::results_table(results, opt.tasks).c_str());
    if (p.has("output")) {
      write_file_atomically(p.get("output"), eval::results_json(results, opt).dump(2) + "\n");
      std::printf("wrote %s\n", p.get("output").c_str());
    }
  }
  MT_CHECK(any, "no task had its data under '", opt.task_data,
           "' (see docs/eval.md for the files and where to get them)");
  return 0;
}

}  // namespace mt::cli
