// `moetrain bench compare --against OTHER [--runs N] [--json] <suite> [its arguments]`: one suite
// run by this program and by another build of it (OTHER, e.g. the revision before a change, built by
// tools/build-rev.sh), in alternation, so that the drift of a shared machine falls on both builds;
// per row of the suite the median of each build, the spread of its runs and the ratio this / other.
//
// First `--warmup` untimed runs of each build (caches, page cache, the CPU's clocks), then the timed
// runs in ABBA order (this, other, other, this, this, other, ...): a steady drift over the runs moves
// both medians alike. Each run is `<program> bench <suite> <arguments> --json`; its stderr passes
// through, its stdout is read as JSON lines (tools/bench/report.h). A run that fails stops the
// comparison with the program, its arguments and its exit status named.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/assets.h"
#include "runtime/error.h"
#include "tools/bench/ops_bench.h"
#include "tools/bench/timer.h"

namespace mt::bench {
namespace {

std::string joined(const std::vector<std::string>& args) {
  std::string s;
  for (const std::string& a : args) s += (s.empty() ? "" : " ") + a;
  return s;
}

// Runs `program args...`, stdin and stderr inherited; returns what it wrote to stdout.
std::string run_program(const std::string& program, const std::vector<std::string>& args) {
  int pipe_fds[2];
  MT_CHECK(::pipe(pipe_fds) == 0, "bench compare: cannot make a pipe");
  std::fflush(stdout);
  pid_t child = ::fork();
  if (child < 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    throw Error("bench compare: cannot start " + program + " (fork failed)");
  }
  if (child == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(program.c_str(), argv.data());
    std::fprintf(stderr, "moetrain bench compare: cannot run %s\n", program.c_str());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
    if (n > 0) out.append(buf, size_t(n));
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0)
    MT_CHECK(errno == EINTR, "bench compare: lost track of ", program, " (waitpid failed)");
  std::string command = "'" + program + " " + joined(args) + "'";
  MT_CHECK(!WIFSIGNALED(status), "bench compare: ", command, " was killed by signal ", WTERMSIG(status));
  MT_CHECK(WEXITSTATUS(status) == 0, "bench compare: ", command, " exited with status ", WEXITSTATUS(status),
           " (does that build know this suite and these arguments?)");
  return out;
}

// One row of a suite over the runs of one build.
struct Samples {
  std::vector<double> values, ratios;
};

// One row of the suite: its unit, and the samples of this build (0) and the other (1).
struct Row {
  std::string unit;
  Samples of[2];
};

// The JSON lines of one run into rows (in the order they first appear: `order`).
void collect(const std::string& output, int build, std::map<std::string, Row>& rows, std::vector<std::string>& order) {
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] != '{') continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("name") || !j.contains("value") || !j["value"].is_number()) continue;
    std::string name = j["name"].get<std::string>();
    auto [it, added] = rows.try_emplace(name);
    if (added) order.push_back(name);
    if (j.contains("unit")) it->second.unit = j["unit"].get<std::string>();
    Samples& s = it->second.of[build];
    s.values.push_back(j["value"].get<double>());
    if (j.contains("ratio") && j["ratio"].is_number()) s.ratios.push_back(j["ratio"].get<double>());
  }
}

std::string spread(const std::vector<double>& v) {
  if (v.empty()) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g..%.4g", *std::min_element(v.begin(), v.end()),
                *std::max_element(v.begin(), v.end()));
  return buf;
}

}  // namespace

int run_compare_bench(const std::vector<std::string>& args) {
  const char* usage =
      "usage: moetrain bench compare --against OTHER [--runs N] [--warmup K] [--json] <suite> [its arguments]\n"
      "  OTHER     another build's moetrain (tools/build-rev.sh REV builds one and prints its path)\n"
      "  --runs    timed runs of each build, in ABBA order (default 4; an even N balances the order)\n"
      "  --warmup  untimed runs of each build first, their output discarded (default 1)\n"
      "  --json    the comparison as one JSON object a row\n";
  // A usage mistake: the usage, then the error (printed last, by the caller of the command)
  auto refuse = [&](const std::string& error) {
    std::fprintf(stderr, "%s", usage);
    throw Error(error);
  };
  std::string other;
  int runs = 4, warmup = 1;
  bool json = false;
  std::vector<std::string> suite;
  auto count = [&](const std::string& flag, const std::string& n, int least) {
    bool whole = !n.empty() && n.size() < 6 && n.find_first_not_of("0123456789") == std::string::npos;
    MT_CHECK(whole && std::stoi(n) >= least, "bench compare: ", flag, " must be a whole number, ", least,
             " or more, got '", n, "'");
    return std::stoi(n);
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!suite.empty()) {
      if (a == "--json")
        json = true;  // (every run is --json; this asks for the comparison in JSON too)
      else
        suite.push_back(a);
      continue;
    }
    bool takes_value = a == "--against" || a == "--runs" || a == "--warmup";
    if (takes_value && i + 1 == args.size()) refuse("bench compare: " + a + " needs a value");
    if (a == "--against") {
      other = args[++i];
    } else if (a == "--runs") {
      runs = count(a, args[++i], 1);
    } else if (a == "--warmup") {
      warmup = count(a, args[++i], 0);
    } else if (a == "--json") {
      json = true;
    } else if (a == "--help" || a == "-h") {
      std::printf("%s", usage);
      return 0;
    } else if (a.rfind("--", 0) == 0) {
      refuse("bench compare: unknown flag " + a + " before the suite");
    } else {
      suite.push_back(a);
    }
  }
  MT_CHECK(!other.empty(), "bench compare: --against OTHER names the other build's moetrain (e.g. the one ",
           "tools/build-rev.sh HEAD~1 prints)");
  struct stat st {};
  MT_CHECK(::stat(other.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(other.c_str(), X_OK) == 0,
           "bench compare: --against ", other,
           " is not an executable file (build it with tools/build-rev.sh REV, which prints its path)");
  MT_CHECK(!suite.empty() && suite[0] != "compare", "bench compare: name the suite to run, e.g. ",
           "moetrain bench compare --against ", other, " ops --quick");
  std::vector<std::string> child_args = {"bench"};
  child_args.insert(child_args.end(), suite.begin(), suite.end());
  child_args.push_back("--json");
  std::string self = executable_path();
  MT_CHECK(!self.empty(), "bench compare: this program's own path is unknown (/proc/self/exe)");
  const std::string programs[2] = {self, other};
  const char* names[2] = {"this build", "the other"};
  for (int w = 0; w < warmup; ++w)
    for (int build : {1, 0}) {
      std::fprintf(stderr, "bench compare: warm-up %d of %d, %s\n", w + 1, warmup, names[build]);
      run_program(programs[build], child_args);
    }
  std::map<std::string, Row> rows;
  std::vector<std::string> order;
  for (int r = 0; r < runs; ++r)
    for (int k = 0; k < 2; ++k) {
      int build = (r % 2 == 0) == (k == 0) ? 0 : 1;  // ABBA: this, other, other, this, ...
      std::fprintf(stderr, "bench compare: run %d of %d, %s\n", r + 1, runs, names[build]);
      collect(run_program(programs[build], child_args), build, rows, order);
    }
  std::vector<std::string> both;  // the rows both builds report
  for (const std::string& name : order) {
    const Row& row = rows[name];
    if (row.of[0].values.empty() || row.of[1].values.empty())
      std::fprintf(stderr, "bench compare: '%s' only in %s's output\n", name.c_str(),
                   row.of[0].values.empty() ? "the other build" : "this build");
    else
      both.push_back(name);
  }
  if (both.empty()) {
    bool from[2] = {false, false};
    for (const auto& [name, row] : rows)
      for (int b : {0, 1}) from[b] = from[b] || !row.of[b].values.empty();
    throw Error("bench compare: no row of '" + joined(child_args) + "' came from both builds (" +
                (!from[1]   ? "the other printed no JSON row: is " + other + " a moetrain?"
                 : !from[0] ? std::string("this build printed no JSON row")
                            : std::string("their rows' names differ")) +
                ")");
  }
  int width = 34;  // the name column: the longest name
  for (const std::string& name : both) width = std::max(width, int(name.size()));
  if (!json) {
    std::printf("bench compare: %s against %s, %d runs each in ABBA order after %d warm-up; medians, [spread]\n",
                joined(child_args).c_str(), other.c_str(), runs, warmup);
    std::printf("%-*s %-9s %12s %12s %8s   %-9s %-9s  %s\n", width, "name", "unit", "this", "other", "this/oth",
                "ratio", "ratio oth", "spread this / other");
  }
  for (const std::string& name : both) {
    const Row& row = rows[name];
    const Samples &a = row.of[0], &b = row.of[1];
    double va = median(a.values), vb = median(b.values);
    bool ratios = !a.ratios.empty() && !b.ratios.empty();
    if (json) {
      nlohmann::json j = {{"bench", "compare"}, {"name", name}, {"unit", row.unit},
                          {"value", va},        {"other", vb},  {"runs", runs}};
      if (vb != 0) j["this_over_other"] = va / vb;
      if (ratios) j["ratio"] = median(a.ratios), j["ratio_other"] = median(b.ratios);
      std::printf("%s\n", j.dump().c_str());
    } else {
      char rel[32] = "-", ratio_a[32] = "", ratio_b[32] = "";
      if (vb != 0) std::snprintf(rel, sizeof rel, "%.3f", va / vb);
      if (ratios)
        std::snprintf(ratio_a, sizeof ratio_a, "%.3f", median(a.ratios)),
            std::snprintf(ratio_b, sizeof ratio_b, "%.3f", median(b.ratios));
      std::printf("%-*s %-9s %12.4g %12.4g %8s   %-9s %-9s  [%s] / [%s]\n", width, name.c_str(), row.unit.c_str(), va,
                  vb, rel, ratio_a, ratio_b, spread(a.values).c_str(), spread(b.values).c_str());
    }
  }
  return 0;
}

}  // namespace mt::bench
