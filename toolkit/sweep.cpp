#include "toolkit/sweep.h"

#include <signal.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "data/gpt2_tokenizer.h"
#include "runtime/file_util.h"
#include "runtime/text_util.h"
#include "toolkit/report.h"
#include "train/config_yaml.h"
#include "train/model_config.h"

namespace mt::toolkit {
using namespace train;  // the configuration, model and checkpoint helpers the tools drive
namespace fs = std::filesystem;
using nlohmann::json;
namespace {

using Overrides = std::vector<std::pair<std::string, YAML::Node>>;

// A value as text: a scalar as written, a list as its items joined by spaces (the command-line form).
std::string value_text(const YAML::Node& v) {
  if (v.IsScalar()) return v.as<std::string>();
  std::vector<std::string> items;
  if (v.IsSequence())
    for (const auto& i : v) items.push_back(i.IsScalar() ? i.as<std::string>() : "?");
  return join(items, " ");
}

// ${var} replaced from `vars`; an unknown name is an error.
std::string interpolate(const std::string& text, const std::map<std::string, std::string>& vars,
                        const std::string& where) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    size_t open = text.find("${", i);
    if (open == std::string::npos) {
      out += text.substr(i);
      break;
    }
    size_t close = text.find('}', open);
    MT_CHECK(close != std::string::npos, where, ": unterminated ${ in '", text, "'");
    std::string name = text.substr(open + 2, close - open - 2);
    auto it = vars.find(name);
    if (it == vars.end()) {
      std::vector<std::string> known;
      for (const auto& [k, v] : vars) known.push_back(k);
      throw Error(where + ": '${" + name + "}' names nothing; known: " + join(known));
    }
    out += text.substr(i, open - i) + it->second;
    i = close + 1;
  }
  return out;
}

// A name usable as a folder.
std::string folder_name(std::string s) {
  for (char& c : s)
    if (c == '/' || c == ' ' || c == '\\' || c == ':') c = '-';
  return s;
}

std::string shell_quoted(const std::string& s) {  // for a POSIX shell
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Every combination of the grid's axes, the last varying fastest.
std::vector<Overrides> grid_combinations(const std::vector<std::pair<std::string, std::vector<YAML::Node>>>& axes) {
  std::vector<Overrides> out = {{}};
  for (const auto& [key, values] : axes) {
    std::vector<Overrides> next;
    for (const Overrides& o : out)
      for (const YAML::Node& v : values) {
        Overrides e = o;
        e.push_back({key, v});
        next.push_back(e);
      }
    out = next;
  }
  return out;
}

// The axis values of a grid/zip key: a non-empty list.
std::vector<YAML::Node> axis_values(const YAML::Node& node, const std::string& where) {
  MT_CHECK(node.IsSequence() && node.size() > 0, where, ": give a non-empty list of values");
  std::vector<YAML::Node> out;
  for (const auto& v : node) out.push_back(v);
  return out;
}

// The first key whose value differs between two effective configs (to_yaml text), for errors.
std::string first_difference(const std::string& a, const std::string& b) {
  std::istringstream x(a), y(b);
  for (std::string l1, l2; std::getline(x, l1) && std::getline(y, l2);)
    if (l1 != l2) return "'" + l1 + "' there, '" + l2 + "' now";
  return "different lengths";
}

}  // namespace

Sweep load_sweep(const std::string& path, int64_t ranks) {
  YAML::Node root = load_yaml_file(path, "sweep file");  // folders, bad YAML, keys given twice: named
  MT_CHECK(root.IsMap(), path, ": a sweep file is a mapping (base, grid, zip, runs, ...)");
  const std::vector<std::string> known = {"base", "name", "output", "set", "grid", "zip", "runs", "run_name"};
  for (const auto& e : root) {
    std::string k = e.first.as<std::string>();
    if (std::find(known.begin(), known.end(), k) == known.end())
      throw Error(path + ":" + std::to_string(e.first.Mark().line + 1) + ": unknown sweep key '" + k +
                  "'; did you mean '" + closest_name(k, known) + "'? (sweep keys: " + join(known) + ")");
  }
  MT_CHECK(root["base"] && root["base"].IsScalar(), path, ": 'base' must name the base config (a YAML file)");
  fs::path base = root["base"].as<std::string>();
  if (base.is_relative() && fs::exists(fs::path(path).parent_path() / base)) base = fs::path(path).parent_path() / base;
  MT_CHECK(fs::exists(base), path, ": base config '", root["base"].as<std::string>(),
           "' not found (relative to the "
           "sweep file or the current folder)");
  TrainConfig base_cfg = load_config_file(base.string());

  Sweep sw;
  sw.file = path;
  sw.name = root["name"] ? root["name"].as<std::string>() : fs::path(path).stem().string();
  std::map<std::string, std::string> sweep_vars = {{"sweep", sw.name}};
  sw.output = root["output"] ? interpolate(root["output"].as<std::string>(), sweep_vars, path + ": output")
                             : "runs/sweeps/" + sw.name;

  // Each part checked on its own first: an unknown key or a wrong type is named with its place.
  auto check = [&](const std::string& key, const YAML::Node& v, const std::string& where) {
    TrainConfig probe = base_cfg;
    apply_yaml_value(probe, key, v, where);
  };
  Overrides common;
  if (root["set"]) {
    MT_CHECK(root["set"].IsMap(), path, ": 'set' is a mapping of keys to values");
    for (const auto& e : root["set"]) {
      check(e.first.as<std::string>(), e.second, path + ": set." + e.first.as<std::string>());
      common.push_back({e.first.as<std::string>(), e.second});
    }
  }
  std::vector<std::pair<std::string, std::vector<YAML::Node>>> grid_axes;
  if (root["grid"]) {
    MT_CHECK(root["grid"].IsMap() && root["grid"].size() > 0, path, ": 'grid' is a mapping of keys to lists");
    for (const auto& e : root["grid"]) {
      std::string where = path + ": grid." + e.first.as<std::string>();
      grid_axes.push_back({e.first.as<std::string>(), axis_values(e.second, where)});
      for (const YAML::Node& v : grid_axes.back().second) check(e.first.as<std::string>(), v, where);
    }
  }
  std::vector<Overrides> zip_sets = {{}};
  if (root["zip"]) {
    MT_CHECK(root["zip"].IsMap() && root["zip"].size() > 0, path, ": 'zip' is a mapping of keys to lists");
    size_t n = 0;
    std::vector<std::pair<std::string, std::vector<YAML::Node>>> axes;
    for (const auto& e : root["zip"]) {
      std::string where = path + ": zip." + e.first.as<std::string>();
      axes.push_back({e.first.as<std::string>(), axis_values(e.second, where)});
      for (const YAML::Node& v : axes.back().second) check(e.first.as<std::string>(), v, where);
      MT_CHECK(n == 0 || axes.back().second.size() == n, where, ": ", axes.back().second.size(),
               " values, but the zip's first key has ", n, " (zip keys move together: give each as many)");
      n = axes.back().second.size();
    }
    zip_sets.assign(n, {});
    for (const auto& [key, values] : axes)
      for (size_t i = 0; i < n; ++i) zip_sets[i].push_back({key, values[i]});
  }
  std::vector<std::pair<std::string, Overrides>> run_sets = {{"", {}}};  // (explicit name, overrides)
  if (root["runs"]) {
    MT_CHECK(root["runs"].IsSequence() && root["runs"].size() > 0, path, ": 'runs' is a non-empty list of mappings");
    run_sets.clear();
    for (size_t i = 0; i < root["runs"].size(); ++i) {
      const YAML::Node r = root["runs"][i];
      MT_CHECK(r.IsMap(), path, ": runs[", i, "] is a mapping of keys to values");
      std::pair<std::string, Overrides> set;
      for (const auto& e : r) {
        std::string key = e.first.as<std::string>();
        if (key == "name") {
          set.first = e.second.as<std::string>();
          continue;
        }
        check(key, e.second, path + ": runs[" + std::to_string(i) + "]." + key);
        set.second.push_back({key, e.second});
      }
      run_sets.push_back(set);
    }
  }

  std::set<std::string> names;
  for (const auto& [explicit_name, run_overrides] : run_sets)
    for (const Overrides& zip : zip_sets)
      for (const Overrides& grid : grid_combinations(grid_axes)) {
        SweepRun run;
        run.index = int(sw.runs.size());
        Overrides varying = run_overrides;
        varying.insert(varying.end(), zip.begin(), zip.end());
        varying.insert(varying.end(), grid.begin(), grid.end());
        std::map<std::string, std::string> vars = sweep_vars;
        vars["output"] = sw.output;
        vars["index"] = std::to_string(run.index);
        for (const auto& [k, v] : common) vars[k] = value_text(v);
        for (const auto& [k, v] : varying) vars[k] = value_text(v);
        if (!explicit_name.empty()) {
          run.name = interpolate(explicit_name, vars, path + ": runs[].name");
        } else if (root["run_name"]) {
          run.name = interpolate(root["run_name"].as<std::string>(), vars, path + ": run_name");
        } else {
          std::vector<std::string> parts;
          for (const auto& [k, v] : varying) parts.push_back(k + "=" + value_text(v));
          run.name = parts.empty() ? "run" + std::to_string(run.index) : join(parts, "_");
        }
        run.name = folder_name(run.name);
        MT_CHECK(names.insert(run.name).second, path, ": two runs are named '", run.name,
                 "' (give run_name a ${key} of every axis, or names in 'runs')");
        vars["name"] = run.name;
        run.dir = (fs::path(sw.output) / run.name).string();
        run.config = base_cfg;
        Overrides all = common;
        all.insert(all.end(), varying.begin(), varying.end());
        for (const auto& [k, v] : all) {
          // a new node: assigning to `v` would rewrite the shared YAML node for every later run
          const YAML::Node value =
              v.IsScalar() ? YAML::Node(interpolate(v.as<std::string>(), vars, path + ": " + k)) : v;
          apply_yaml_value(run.config, k, value, path + ": run '" + run.name + "': " + k);
          run.overrides.push_back({k, value_text(value)});
        }
        run.config.save = run.dir;
        run.config.load = run.dir;  // an interrupted run resumes
        try {
          validate(run.config, ranks);
        } catch (const Error& e) {
          throw Error(path + ": run '" + run.name + "': " + e.what());
        }
        fs::path saved = fs::path(run.dir) / "sweep_config.yaml";
        if (fs::exists(saved)) {
          std::string before = read_file(saved.string()), now = to_yaml(run.config);
          MT_CHECK(before == now, path, ": run '", run.name, "': the folder ", run.dir,
                   " holds a run of a different config (", first_difference(before, now),
                   "); remove the folder or change the sweep's output");
        }
        sw.runs.push_back(std::move(run));
      }
  return sw;
}

RunStatus run_status(const std::string& dir) {
  fs::path status = fs::path(dir) / "sweep_status.json";
  RunStatus s;
  if (!fs::exists(status)) {
    s.state = fs::exists(fs::path(dir) / "metrics.jsonl") ? "interrupted" : "not started";
    return s;
  }
  json j;
  try {
    j = json::parse(read_file(status.string()));
  } catch (const json::exception&) {
    s.state = "interrupted";
    return s;
  }
  s.state = j.value("state", "interrupted");
  s.error = j.value("error", "");
  if (s.state == "running") {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    bool alive = j.value("host", "") == host && ::kill(pid_t(j.value("pid", 0)), 0) == 0;
    if (!alive) s.state = "interrupted";
  }
  return s;
}

std::string prepare_run(const SweepRun& run, const std::string& moetrain, const std::string& launcher) {
  fs::create_directories(run.dir);
  std::string config = (fs::path(run.dir) / "sweep_config.yaml").string();
  write_file_atomically(config, to_yaml(run.config));
  json overrides = json::object();
  for (const auto& [k, v] : run.overrides) overrides[k] = v;
  write_file_atomically((fs::path(run.dir) / "sweep_overrides.json").string(),
                        json{{"index", run.index}, {"name", run.name}, {"overrides", overrides}}.dump(2) + "\n");
  return (launcher.empty() ? "" : launcher + " ") + shell_quoted(moetrain) + " train " + shell_quoted(config);
}

namespace {
void write_status(const std::string& dir, const std::string& state, const std::string& error = "") {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  write_file_atomically(
      (fs::path(dir) / "sweep_status.json").string(),
      json{{"state", state}, {"error", error}, {"pid", int(::getpid())}, {"host", host}}.dump() + "\n");
}

// The last line of a log that reports an error (or its last line).
std::string last_error(const std::string& log) {
  std::istringstream in(fs::exists(log) ? read_file(log) : "");
  std::string last, error;
  for (std::string line; std::getline(in, line);) {
    if (line.find("error") != std::string::npos) error = line;
    if (!line.empty()) last = line;
  }
  return error.empty() ? last : error;
}
}  // namespace

int run_sweep(const Sweep& sweep, const std::string& moetrain, const std::string& launcher) {
  int failed = 0, n = int(sweep.runs.size());
  for (const SweepRun& run : sweep.runs) {
    RunStatus st = run_status(run.dir);
    std::printf("[%d/%d] %s: ", run.index + 1, n, run.name.c_str());
    if (st.state == "finished") {
      std::printf("finished, skipped\n");
      continue;
    }
    MT_CHECK(st.state != "running", "run '", run.name, "' is running now (", run.dir,
             "/sweep_status.json); wait for it or stop it first");
    std::string cmd = prepare_run(run, moetrain, launcher);
    std::string log = (fs::path(run.dir) / "train.log").string();
    std::printf("%s\n  %s\n", st.state == "interrupted" ? "resuming" : "starting", cmd.c_str());
    std::fflush(stdout);
    write_status(run.dir, "running");
    int rc = std::system((cmd + " >> " + shell_quoted(log) + " 2>&1").c_str());
    if (rc == 0) {
      write_status(run.dir, "finished");
      std::printf("  finished (log: %s)\n", log.c_str());
    } else {
      ++failed;
      std::string error = last_error(log);
      write_status(run.dir, "failed", error);
      std::printf("  FAILED: %s (log: %s)\n", error.c_str(), log.c_str());
    }
    std::fflush(stdout);
  }
  return failed;
}

std::string emit_slurm(const Sweep& sweep, const std::string& moetrain, const std::string& launcher) {
  fs::create_directories(sweep.output);
  std::string commands;
  for (const SweepRun& run : sweep.runs) commands += prepare_run(run, moetrain, launcher) + "\n";
  std::string list = (fs::path(sweep.output) / "commands.txt").string();
  write_file_atomically(list, commands);
  std::string script =
      "#!/bin/bash\n"
      "# moetrain sweep '" +
      sweep.name + "': one run per array task (" + std::to_string(sweep.runs.size()) + " runs; commands in " + list +
      "). Submit: sbatch " + (fs::path(sweep.output) / "sweep.slurm").string() +
      "\n#SBATCH --job-name=" + folder_name(sweep.name) + "\n#SBATCH --array=0-" +
      std::to_string(sweep.runs.size() - 1) +
      "\n#SBATCH --output=" + (fs::path(sweep.output) / "slurm-%A_%a.out").string() +
      "\nset -euo pipefail\ncmd=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" " + shell_quoted(list) +
      ")\necho \"$cmd\"\neval \"$cmd\"\n";
  std::string path = (fs::path(sweep.output) / "sweep.slurm").string();
  write_file_atomically(path, script);
  return path;
}

SweepTable collect_sweep(const std::string& dir) {
  MT_CHECK(fs::is_directory(dir), "--collect: '", dir, "' is not a folder (give a sweep's output folder)");
  struct Row {
    int index;
    std::string name;
    std::map<std::string, std::string> overrides, values;
  };
  std::vector<Row> rows;
  std::vector<std::string> override_keys, metric_keys;
  auto add_key = [](std::vector<std::string>& keys, const std::string& k) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  };
  for (const auto& entry : fs::directory_iterator(dir)) {
    fs::path run = entry.path();
    if (!fs::exists(run / "sweep_config.yaml")) continue;
    Row r;
    r.name = run.filename().string();
    r.index = int(rows.size());
    try {
      json o = json::parse(fs::exists(run / "sweep_overrides.json") ? read_file((run / "sweep_overrides.json").string())
                                                                    : "");
      r.index = o.value("index", r.index);
      for (const auto& [k, v] : o["overrides"].items()) {
        r.overrides[k] = v.get<std::string>();
        add_key(override_keys, k);
      }
    } catch (const json::exception&) {
    }
    RunStatus st = run_status(run.string());
    r.values["status"] = st.state + (st.error.empty() ? "" : ": " + st.error);
    TrainConfig cfg = load_config_file((run / "sweep_config.yaml").string());
    int64_t vocab = cfg.vocab_file.empty() ? 50257 : data::Gpt2Tokenizer(cfg.vocab_file, cfg.merge_file).vocab_size();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2fM", double(count_parameters(cfg, vocab)) / 1e6);
    r.values["params_total"] = buf;
    std::snprintf(buf, sizeof buf, "%.2fM", double(count_active_parameters(cfg, vocab)) / 1e6);
    r.values["params_active"] = buf;
    std::istringstream metrics(fs::exists(run / "metrics.jsonl") ? read_file((run / "metrics.jsonl").string()) : "");
    for (std::string line; std::getline(metrics, line);) {
      json j;
      try {
        j = json::parse(line);
      } catch (const json::exception&) {
        continue;  // a line cut by a kill
      }
      std::string split = j.value("split", "");
      auto num = [](double v) {
        char b[32];
        std::snprintf(b, sizeof b, "%.4f", v);
        return std::string(b);
      };
      if (split == "train") {
        r.values["train_loss"] = num(j.value("lm_loss", 0.0));
        std::snprintf(buf, sizeof buf, "%.0f", j.value("tokens_per_s", 0.0));
        r.values["tokens_per_s"] = buf;
        r.values["iteration"] = std::to_string(j.value("iteration", int64_t(0)));
      } else if (split == "valid") {
        r.values["valid_loss"] = num(j.value("lm_loss", 0.0));
      } else if (split == "tasks") {
        for (const auto& [k, v] : j.items())
          if (is_task_metric(k) && v.is_number()) {
            r.values[k] = num(v.get<double>());
            add_key(metric_keys, k);
          }
      }
    }
    rows.push_back(r);
  }
  MT_CHECK(!rows.empty(), "--collect: no run folders (with sweep_config.yaml) under '", dir, "'");
  // Only the overrides that differ between runs are columns (those every run shares say nothing).
  override_keys.erase(std::remove_if(override_keys.begin(), override_keys.end(),
                                     [&](const std::string& k) {
                                       auto value = [&](const Row& r) {
                                         auto it = r.overrides.find(k);
                                         return it == r.overrides.end() ? std::string("\x01unset") : it->second;
                                       };
                                       for (const Row& r : rows)
                                         if (value(r) != value(rows[0])) return false;
                                       return rows.size() > 1;
                                     }),
                      override_keys.end());
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.index < b.index; });
  SweepTable t;
  t.columns = {"run"};
  t.columns.insert(t.columns.end(), override_keys.begin(), override_keys.end());
  for (const char* c : {"iteration", "train_loss", "valid_loss"}) t.columns.push_back(c);
  t.columns.insert(t.columns.end(), metric_keys.begin(), metric_keys.end());
  for (const char* c : {"params_total", "params_active", "tokens_per_s", "status"}) t.columns.push_back(c);
  for (const Row& r : rows) {
    std::vector<std::string> cells = {r.name};
    for (size_t c = 1; c < t.columns.size(); ++c) {
      const std::string& k = t.columns[c];
      auto o = r.overrides.find(k);
      auto v = r.values.find(k);
      cells.push_back(o != r.overrides.end() ? o->second : v != r.values.end() ? v->second : "");
    }
    t.rows.push_back(cells);
  }
  return t;
}

std::string to_markdown(const SweepTable& t) {
  std::string out = "| " + join(t.columns, " | ") + " |\n|";
  for (size_t i = 0; i < t.columns.size(); ++i) out += "---|";
  out += "\n";
  for (const auto& r : t.rows) {
    std::vector<std::string> cells;
    for (std::string c : r) {
      std::replace(c.begin(), c.end(), '|', '/');  // a cell cannot hold the column separator
      cells.push_back(c);
    }
    out += "| " + join(cells, " | ") + " |\n";
  }
  return out;
}

std::string to_csv(const SweepTable& t) {
  auto cell = [](const std::string& c) {
    if (c.find_first_of(",\"\n") == std::string::npos) return c;
    std::string q = "\"";
    for (char ch : c) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
  };
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i) out += ',';
      out += cell(cells[i]);
    }
    out += "\n";
  };
  line(t.columns);
  for (const auto& r : t.rows) line(r);
  return out;
}

}  // namespace mt::toolkit
