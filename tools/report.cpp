// `moetrain report RUN_DIR [--compare RUN_DIR ...] [--output FILE]`: an HTML page of a run's
// final numbers and curves, other runs overlaid (toolkit/report.h).
#include "toolkit/report.h"

#include <cstdio>
#include <filesystem>

#include "runtime/file_util.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mt::cli {

int run_report(const Args& args) {
  ArgParser p("report", {"output"}, {"help"}, {"compare"});
  p.parse(args);
  if (p.flag("help") || p.positional().size() != 1) {
    std::printf(
        "usage: moetrain report RUN_DIR [--compare RUN_DIR ...] [--output FILE]\n\n"
        "A self-contained HTML page (inline SVG, no scripts) from the runs' metrics.jsonl: a summary\n"
        "table (final iteration and train loss, best and final validation loss and perplexity, tokens/s,\n"
        "parameters, zero-shot metrics), loss curves (train and validation, runs overlaid), learning\n"
        "rate, gradient norm, tokens/s, KD and MoE loss terms, the first run's expert-load heatmaps and\n"
        "per-layer curves (dropped fraction, load CV, dead experts; interference and drop cost with\n"
        "moe_router_diagnostics). Each run keeps one colour, dash pattern and marker in every chart.\n"
        "Default output: RUN_DIR/report.html.\n");
    return p.flag("help") ? 0 : 1;
  }
  std::vector<toolkit::RunMetrics> runs = {toolkit::read_run_metrics(p.positional()[0])};
  for (const std::string& other : p.get_list("compare")) runs.push_back(toolkit::read_run_metrics(other));
  std::string out = p.get("output", (std::filesystem::path(p.positional()[0]) / "report.html").string());
  write_file_atomically(out, toolkit::html_report(runs));
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

}  // namespace mt::cli
