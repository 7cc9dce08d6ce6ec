// `moetrain bench <suite> [--json] [--quick]`: speed measurements as ratios on this machine.
#include <cstdio>

#include "runtime/assets.h"
#include "runtime/error.h"
#include "tools/args.h"
#include "tools/bench/ops_bench.h"
#include "tools/command.h"

namespace mt::cli {

int run_bench(const Args& args) {
  if (!args.empty() && args[0] == "compare") return bench::run_compare_bench(Args(args.begin() + 1, args.end()));
  // `bench train` and `bench eval` pass any other --key value to the model's configuration.
  Args own, overrides;
  bool train = !args.empty() && (args[0] == "train" || args[0] == "eval");
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool known = a == "--json" || a == "--quick" || a == "--profile" || a == "--help" || a == "-h" || a == "--config" ||
                 a == "--iters" || a == "--task-data" || a == "--only" || a.rfind("--config=", 0) == 0 ||
                 a.rfind("--iters=", 0) == 0 || a.rfind("--task-data=", 0) == 0 || a.rfind("--only=", 0) == 0 ||
                 a.rfind("--", 0) != 0;
    if (train && !known) {
      overrides.push_back(a);
      while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) overrides.push_back(args[++i]);
      continue;
    }
    own.push_back(a);
    if ((a == "--config" || a == "--iters" || a == "--task-data" || a == "--only") && i + 1 < args.size())
      own.push_back(args[++i]);
  }
  ArgParser p("bench", {"config", "iters", "task-data", "only"}, {"json", "quick", "profile", "help"});
  p.parse(own);
  bench::BenchOptions opt;
  opt.json = p.flag("json");
  opt.quick = p.flag("quick");
  opt.profile = p.flag("profile");
  std::string suite = p.positional().empty() ? "" : p.positional()[0];
  if (suite.empty() || p.flag("help")) {
    std::printf(
        "usage: moetrain bench <suite> [--json] [--quick]\n\n"
        "suites:\n"
        "  ops        GEMM (vs raw cblas_sgemm), attention, layernorm, GELU, softmax, embedding,\n"
        "             cross-entropy: time, GFLOP/s or GB/s, ratios to the machine's SGEMM\n"
        "             [--only GROUP[,GROUP]]: gemm, bf16, attention, elementwise, embedding,\n"
        "             cross_entropy (after the SGEMM reference), e.g. --only attention\n"
        "  tokenizer  GPT-2 BPE MB/s on one core (cold and warm piece cache), preprocess MB/s with\n"
        "             1 worker and with every core\n"
        "  train      training tokens/s and model FLOP/s as a fraction of SGEMM; for an MoE model also\n"
        "             its dense twin's tokens/s and the MoE/dense ratio\n"
        "             [--config X.yaml] [--key value ...] (default: 6 layers, hidden 256, 8 heads,\n"
        "             seq 256, micro-batch 8) [--iters N] (default 5)\n"
        "             --profile: then where a step's time goes, kernel by kernel (ms per step,\n"
        "             share of the step; 'outside kernels' is autograd, allocation, the loop)\n"
        "             --precision bf16: also the fp32 twin, and bf16/fp32 tokens/s\n"
        "             e.g. moetrain bench train --num-experts 8   (MoE at every other layer)\n"
        "             under mpirun -np N: the job's tokens/s against a baseline named in the output,\n"
        "             one process on the cores the ranks use (ideal ratio 1 on one node)\n\n"
        "  comm       bus bandwidth of every collective (run it under mpirun -np N)\n"
        "  eval       zero-shot scoring tokens/s (lambada, piqa, boolq of --task-data, default\n"
        "             assets/eval) against the training step's forward-only tokens/s, same model\n"
        "             [--config X.yaml] [--key value ...] (default: the train suite's model)\n"
        "  compare    --against OTHER [--runs N] [--warmup K] <suite> [its arguments]: the suite run\n"
        "             by this build and another (OTHER: its moetrain, e.g. from tools/build-rev.sh REV)\n"
        "             in alternation, after K untimed runs each (default 1), N runs each (default 4);\n"
        "             medians, spreads, this/other per row (docs/performance.md)\n"
        "  --json     one JSON object per line: bench, name, value, unit, ratio\n"
        "  --quick    shorter timings and fewer shapes\n");
    return suite.empty() && !p.flag("help") ? 1 : 0;
  }
  if (p.has("only")) {
    if (suite != "ops") throw Error("--only applies to bench ops (its groups of rows), not to bench " + suite);
    opt.only = bench::parse_ops_groups(p.get("only"));
  }
  if (suite == "ops") return bench::run_ops_bench(opt);
  if (suite == "tokenizer") return bench::run_tokenizer_bench(opt);
  if (suite == "comm") return bench::run_comm_bench(opt);
  if (suite == "train")
    return bench::run_train_bench(opt, p.get("config"), overrides, p.get_int("iters", opt.quick ? 2 : 5));
  if (suite == "eval")
    return bench::run_eval_bench(opt, p.get("config"), overrides,
                                 p.has("task-data") ? p.get("task-data") : asset_path("eval"));
  throw Error("unknown suite '" + suite + "'; available: ops, tokenizer, train, comm, eval");
}

}  // namespace mt::cli
