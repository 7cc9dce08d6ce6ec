// `moetrain bench <suite> [--json] [--quick]`: speed measurements as ratios on this machine.
#include <cstdio>

#include "runtime/error.h"
#include "tools/bench/ops_bench.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mt::cli {

int run_bench(const Args& args) {
  ArgParser p("bench", {"config", "iters"}, {"json", "quick", "help"});
  p.parse(args);
  bench::BenchOptions opt;
  opt.json = p.flag("json");
  opt.quick = p.flag("quick");
  std::string suite = p.positional().empty() ? "" : p.positional()[0];
  if (suite.empty() || p.flag("help")) {
    std::printf(
        "usage: moetrain bench <suite> [--json] [--quick]\n\n"
        "suites:\n"
        "  ops        GEMM (vs raw cblas_sgemm), attention, layernorm, GELU, softmax, embedding,\n"
        "             cross-entropy: time, GFLOP/s or GB/s, ratios to the machine's SGEMM\n"
        "  tokenizer  GPT-2 BPE MB/s on one core (cold and warm piece cache), preprocess MB/s with\n"
        "             1 worker and with every core\n"
        "  train      training tokens/s and model FLOP/s as a fraction of SGEMM\n"
        "             [--config X.yaml] (default: 6 layers, hidden 256, 8 heads, seq 256, micro-batch 8)\n"
        "             [--iters N] (default 5)\n\n"
        "  --json     one JSON object per line: bench, name, value, unit, ratio\n"
        "  --quick    shorter timings and fewer shapes\n");
    return suite.empty() && !p.flag("help") ? 1 : 0;
  }
  if (suite == "ops") return bench::run_ops_bench(opt);
  if (suite == "tokenizer") return bench::run_tokenizer_bench(opt);
  if (suite == "train") return bench::run_train_bench(opt, p.get("config"), p.get_int("iters", opt.quick ? 2 : 5));
  throw Error("unknown suite '" + suite + "'; available: ops, tokenizer, train");
}

}  // namespace mt::cli
