// `moetrain bench compare --against OTHER [--runs N] [--json] <suite> [its arguments]`: one suite
// run by this program and by another build of it (OTHER, e.g. the revision before a change, built by
// tools/build-rev.sh), in alternation, so that the drift of a shared machine falls on both builds;
// per row of the suite the median of each build, the spread of its runs and the ratio this / other.
//
// The order is ABBA (this, other, other, this, this, other, ...): a steady drift over the runs moves
// both medians alike. Each run is `<program> bench <suite> <arguments> --json`; its stderr passes
// through, its stdout is read as JSON lines (tools/bench/report.h). A run that fails stops the
// comparison with the program, its arguments and its exit status named.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "tools/bench/ops_bench.h"

namespace mt::bench {
namespace {

std::string this_program() {
  std::vector<char> path(4096);
  ssize_t n = ::readlink("/proc/self/exe", path.data(), path.size() - 1);
  MT_CHECK(n > 0, "bench compare: cannot find this program's path (/proc/self/exe)");
  return std::string(path.data(), size_t(n));
}

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
  MT_CHECK(child >= 0, "bench compare: cannot start ", program);
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
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) != 0;)
    if (n > 0) out.append(buf, size_t(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  MT_CHECK(code == 0, "bench compare: '", program, " ", joined(args), "' exited with status ", code,
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

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The JSON lines of one run into rows (in the order they first appear: `order`).
void collect(const std::string& output, int build, std::map<std::string, Row>& rows, std::vector<std::string>& order) {
  size_t start = 0;
  while (start < output.size()) {
    size_t end = output.find('\n', start);
    if (end == std::string::npos) end = output.size();
    std::string line = output.substr(start, end - start);
    start = end + 1;
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
  std::snprintf(buf, sizeof buf, "%.4g-%.4g", *std::min_element(v.begin(), v.end()),
                *std::max_element(v.begin(), v.end()));
  return buf;
}

}  // namespace

int run_compare_bench(const std::vector<std::string>& args) {
  std::string other;
  int runs = 3;
  bool json = false;
  std::vector<std::string> suite;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!suite.empty()) {
      if (a == "--json")
        json = true;  // (every run is --json; this asks for the comparison in JSON too)
      else
        suite.push_back(a);
      continue;
    }
    if (a == "--against" && i + 1 < args.size()) {
      other = args[++i];
    } else if (a == "--runs" && i + 1 < args.size()) {
      const std::string& n = args[++i];
      bool whole = !n.empty() && n.size() < 6 && n.find_first_not_of("0123456789") == std::string::npos;
      MT_CHECK(whole && std::stoi(n) >= 1, "bench compare: --runs must be a whole number, 1 or more, got '", n, "'");
      runs = std::stoi(n);
    } else if (a == "--json") {
      json = true;
    } else if (a.rfind("--", 0) == 0) {
      throw Error("bench compare: unknown flag " + a +
                  " before the suite; usage: moetrain bench compare --against OTHER [--runs N] [--json] <suite> "
                  "[its arguments]");
    } else {
      suite.push_back(a);
    }
  }
  MT_CHECK(!other.empty(), "bench compare: --against OTHER names the other build's moetrain (e.g. the one ",
           "tools/build-rev.sh HEAD~1 prints)");
  MT_CHECK(::access(other.c_str(), X_OK) == 0, "bench compare: --against ", other,
           " is not an executable file (build it with tools/build-rev.sh REV, which prints its path)");
  MT_CHECK(!suite.empty() && suite[0] != "compare", "bench compare: name the suite to run, e.g. ",
           "moetrain bench compare --against ", other, " ops --quick");
  std::vector<std::string> child_args = {"bench"};
  child_args.insert(child_args.end(), suite.begin(), suite.end());
  child_args.push_back("--json");
  std::string self = this_program();
  std::map<std::string, Row> rows;
  std::vector<std::string> order;
  for (int r = 0; r < runs; ++r)
    for (int k = 0; k < 2; ++k) {
      int build = (r % 2 == 0) == (k == 0) ? 0 : 1;  // ABBA: this, other, other, this, ...
      std::fprintf(stderr, "bench compare: run %d of %d, %s\n", r + 1, runs, build == 0 ? "this build" : "the other");
      collect(run_program(build == 0 ? self : other, child_args), build, rows, order);
    }
  int width = 34;  // the name column: the longest name
  for (const std::string& name : order) width = std::max(width, int(name.size()));
  if (!json) {
    std::printf("bench compare: %s against %s, %d runs each, alternating (ABBA); medians, [spread]\n",
                joined(child_args).c_str(), other.c_str(), runs);
    std::printf("%-*s %-9s %12s %12s %8s   %-9s %-9s  %s\n", width, "name", "unit", "this", "other", "this/oth",
                "ratio", "ratio oth", "spread this / other");
  }
  for (const std::string& name : order) {
    const Row& row = rows[name];
    const Samples &a = row.of[0], &b = row.of[1];
    if (a.values.empty() || b.values.empty()) {  // a row only one build reports
      std::fprintf(stderr, "bench compare: '%s' only in %s's output\n", name.c_str(),
                   a.values.empty() ? "the other build" : "this build");
      continue;
    }
    double va = median(a.values), vb = median(b.values);
    double rel = vb != 0 ? va / vb : 0;
    bool ratios = !a.ratios.empty() && !b.ratios.empty();
    double ra = ratios ? median(a.ratios) : -1, rb = ratios ? median(b.ratios) : -1;
    if (json) {
      std::printf("{\"bench\":\"compare\",\"name\":\"%s\",\"unit\":\"%s\",\"value\":%.6g,\"other\":%.6g,\"runs\":%d",
                  name.c_str(), row.unit.c_str(), va, vb, runs);
      if (vb != 0) std::printf(",\"this_over_other\":%.4f", rel);
      if (ratios) std::printf(",\"ratio\":%.4f,\"ratio_other\":%.4f", ra, rb);
      std::printf("}\n");
    } else {
      char ratio_a[32] = "", ratio_b[32] = "";
      if (ratios)
        std::snprintf(ratio_a, sizeof ratio_a, "%.3f", ra), std::snprintf(ratio_b, sizeof ratio_b, "%.3f", rb);
      std::printf("%-*s %-9s %12.4g %12.4g %8.3f   %-9s %-9s  [%s] / [%s]\n", width, name.c_str(), row.unit.c_str(), va,
                  vb, rel, ratio_a, ratio_b, spread(a.values).c_str(), spread(b.values).c_str());
    }
  }
  return 0;
}

}  // namespace mt::bench
