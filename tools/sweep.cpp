// `moetrain sweep SWEEP.yaml [--dry-run | --run | --emit slurm|list] [--launcher "mpirun -np 2"]`
// and `moetrain sweep --collect DIR [--csv FILE]`: YAML experiment sweeps (toolkit/sweep.h).
#include "toolkit/sweep.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "runtime/file_util.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mt::cli {
namespace {

std::string self_path() {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "moetrain" : p.string();
}

// The rank count a launcher starts ("mpirun -np 4 ..." -> 4), for validating layouts.
int64_t launcher_ranks(const std::string& launcher) {
  std::istringstream words(launcher);
  std::vector<std::string> w;
  for (std::string s; words >> s;) w.push_back(s);
  for (size_t i = 0; i + 1 < w.size(); ++i)
    if (w[i] == "-np" || w[i] == "-n" || w[i] == "--np" || w[i] == "--ntasks") return std::stoll(w[i + 1]);
  return 1;
}

}  // namespace

int run_sweep(const Args& args) {
  ArgParser p("sweep", {"emit", "launcher", "collect", "csv"}, {"dry-run", "run", "help"});
  p.parse(args);
  if (p.flag("help") || (args.empty())) {
    std::printf(
        "usage: moetrain sweep SWEEP.yaml [--dry-run | --run | --emit slurm|list] [--launcher CMD]\n"
        "       moetrain sweep --collect DIR [--csv FILE]\n\n"
        "  --dry-run        print the expanded runs and their overrides (the default)\n"
        "  --run            train every run not finished yet, one after another (interrupted ones resume)\n"
        "  --emit slurm     write <output>/sweep.slurm, a Slurm array job with one run per task\n"
        "  --emit list      print one command per run, for any scheduler\n"
        "  --launcher CMD   prefix of each training command, e.g. \"mpirun -np 2\"\n"
        "  --collect DIR    one table of a sweep's runs (Markdown on stdout, CSV to DIR/summary.csv\n"
        "                   or --csv FILE): overrides, losses, zero-shot metrics, parameters, tokens/s, status\n"
        "The sweep file format: docs/sweeps.md.\n");
    return args.empty() ? 1 : 0;
  }
  if (p.has("collect")) {
    toolkit::SweepTable t = toolkit::collect_sweep(p.get("collect"));
    std::printf("%s", toolkit::to_markdown(t).c_str());
    std::string csv = p.get("csv", (std::filesystem::path(p.get("collect")) / "summary.csv").string());
    write_file_atomically(csv, toolkit::to_csv(t));
    std::printf("\nwrote %s\n", csv.c_str());
    return 0;
  }
  MT_CHECK(p.positional().size() == 1, "give one sweep file (see `moetrain sweep --help`)");
  std::string launcher = p.get("launcher");
  toolkit::Sweep sweep = toolkit::load_sweep(p.positional()[0], launcher_ranks(launcher));
  if (p.flag("run")) {
    std::printf("sweep '%s': %zu runs under %s\n", sweep.name.c_str(), sweep.runs.size(), sweep.output.c_str());
    int failed = toolkit::run_sweep(sweep, self_path(), launcher);
    std::printf("sweep '%s': %zu runs, %d failed; moetrain sweep --collect %s\n", sweep.name.c_str(), sweep.runs.size(),
                failed, sweep.output.c_str());
    return failed == 0 ? 0 : 1;
  }
  if (p.has("emit")) {
    std::string what = p.get("emit");
    if (what == "slurm") {
      std::printf("wrote %s (sbatch it)\n", toolkit::emit_slurm(sweep, self_path(), launcher).c_str());
      return 0;
    }
    MT_CHECK(what == "list", "--emit takes slurm or list, got '", what, "'");
    for (const toolkit::SweepRun& run : sweep.runs)
      std::printf("%s\n", toolkit::prepare_run(run, self_path(), launcher).c_str());
    return 0;
  }
  std::printf("sweep '%s' (%s): %zu runs under %s\n", sweep.name.c_str(), sweep.file.c_str(), sweep.runs.size(),
              sweep.output.c_str());
  for (const toolkit::SweepRun& run : sweep.runs) {
    std::printf("  %3d  %-40s %s\n", run.index, run.name.c_str(), toolkit::run_status(run.dir).state.c_str());
    for (const auto& [k, v] : run.overrides) std::printf("         %s: %s\n", k.c_str(), v.c_str());
  }
  return 0;
}

}  // namespace mt::cli
