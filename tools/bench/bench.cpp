// `moetrain bench <suite> [--json] [--quick]`: speed measurements as ratios on this machine.
#include <cstdio>

#include "runtime/error.h"
#include "tools/bench/ops_bench.h"
#include "tools/command.h"

namespace mt::cli {

int run_bench(const Args& args) {
  bench::BenchOptions opt;
  std::string suite;
  for (const std::string& a : args) {
    if (a == "--json")
      opt.json = true;
    else if (a == "--quick")
      opt.quick = true;
    else if (a == "--help" || a == "-h")
      suite = "help";
    else if (!a.empty() && a[0] != '-' && suite.empty())
      suite = a;
    else
      throw Error("unknown option '" + a + "'; see `moetrain bench --help`");
  }
  if (suite.empty() || suite == "help") {
    std::printf(
        "usage: moetrain bench <suite> [--json] [--quick]\n\n"
        "suites:\n"
        "  ops     GEMM (vs raw cblas_sgemm), attention, layernorm, GELU, softmax, embedding,\n"
        "          cross-entropy: time, GFLOP/s or GB/s, ratios to the machine's SGEMM\n"
        "  tokenizer  GPT-2 BPE MB/s on one core (cold and warm piece cache), preprocess MB/s with\n"
        "          1 worker and with every core\n\n"
        "  --json   one JSON object per line: bench, name, value, unit, ratio\n"
        "  --quick  shorter timings and fewer shapes\n");
    return suite.empty() ? 1 : 0;
  }
  if (suite == "ops") return bench::run_ops_bench(opt);
  if (suite == "tokenizer") return bench::run_tokenizer_bench(opt);
  throw Error("unknown suite '" + suite + "'; available: ops, tokenizer");
}

}  // namespace mt::cli
