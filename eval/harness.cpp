#include "eval/harness.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/file_util.h"

namespace mt::eval {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

bool lead(const EvalOptions& o) {
  return !o.ranks || o.ranks->rank() == 0;
}

// The table's columns: (task, metric, shown as a percentage).
struct Column {
  std::string task, metric;
  bool percent;
};
std::vector<Column> columns_for(const std::string& task) {
  if (task == "lambada") return {{task, "acc", true}, {task, "ppl", false}};
  if (task == "piqa") return {{task, "acc", true}, {task, "acc_norm", true}};
  if (task == "wikitext") return {{task, "word_perplexity", false}};
  return {{task, "acc", true}};
}

// What lm-evaluation-harness 0.2.0 records of a task: its VERSION (lm_eval/tasks/*.py) and its
// metrics in the order its process_results returns them.
struct LmEvalTask {
  int version;
  std::vector<std::string> metrics;
};
const LmEvalTask& lm_eval_task(const std::string& task) {
  static const std::map<std::string, LmEvalTask> known = {
      {"lambada", {0, {"ppl", "acc"}}},
      {"piqa", {0, {"acc", "acc_norm"}}},
      {"boolq", {1, {"acc"}}},
      {"race", {0, {"acc"}}},
      {"triviaqa", {0, {"acc"}}},
      {"webqs", {0, {"acc"}}},
      {"wikitext", {1, {"word_perplexity", "byte_perplexity", "bits_per_byte"}}}};
  auto it = known.find(task);
  MT_CHECK(it != known.end(), "task '", task, "' has no lm-evaluation-harness version in eval/harness.cpp");
  return it->second;
}

}  // namespace

std::map<std::string, TaskRun> evaluate_model(const nn::GptModel& model, const data::Gpt2Tokenizer& tok,
                                              const EvalOptions& options) {
  GptLogitSource source(model, tok.vocab_size());
  ScoreOptions so;
  so.batch_tokens = options.batch_tokens;
  so.ranks = options.ranks;
  so.progress = options.verbose;
  std::map<std::string, TaskRun> out;
  const std::vector<std::string>& names = options.tasks.empty() ? eval_task_names() : options.tasks;
  for (const std::string& name : names) {
    std::unique_ptr<EvalTask> task = make_eval_task(name);
    TaskRun run;
    auto start = std::chrono::steady_clock::now();
    try {
      run.metrics = run_eval_task(*task, source, tok, options.task_data, options.limit, so, &run.stats);
    } catch (const MissingTaskData& e) {
      run.missing = e.what();
      if (options.verbose && lead(options)) std::fprintf(stderr, "  skipped: %s\n", e.what());
      out[name] = run;
      continue;
    }
    run.seconds = seconds_since(start);
    if (options.verbose && lead(options)) {
      std::fprintf(stderr, "  %-9s %lld docs, %lld requests in %.1f s:", name.c_str(), (long long)run.metrics.docs,
                   (long long)run.metrics.requests, run.seconds);
      for (const auto& [k, v] : run.metrics.values) std::fprintf(stderr, " %s %.4f", k.c_str(), v);
      std::fprintf(stderr, "\n");
    }
    out[name] = run;
  }
  return out;
}

std::string results_table(const std::vector<CheckpointResults>& results, const std::vector<std::string>& tasks) {
  std::vector<Column> cols;
  for (const std::string& t : tasks)
    for (const Column& c : columns_for(t)) cols.push_back(c);
  std::ostringstream out;
  out << "| checkpoint |";
  for (const Column& c : cols) out << " " << c.task << " " << c.metric << (c.percent ? " (%)" : "") << " |";
  out << "\n|---|";
  for (size_t i = 0; i < cols.size(); ++i) out << "---:|";
  out << "\n";
  for (const CheckpointResults& r : results) {
    out << "| " << r.checkpoint << " |";
    for (const Column& c : cols) {
      auto it = r.tasks.find(c.task);
      if (it == r.tasks.end() || !it->second.missing.empty() || !it->second.metrics.values.count(c.metric)) {
        out << " n/a |";
        continue;
      }
      double v = it->second.metrics.values.at(c.metric);
      char buf[32];
      std::snprintf(buf, sizeof buf, c.percent ? " %.2f |" : " %.2f |", c.percent ? 100.0 * v : v);
      out << buf;
    }
    out << "\n";
  }
  return out.str();
}

nlohmann::json results_json(const std::vector<CheckpointResults>& results, const EvalOptions& options) {
  nlohmann::json all = nlohmann::json::array();
  for (const CheckpointResults& r : results) {
    nlohmann::json tasks = nlohmann::json::object();
    for (const auto& [name, run] : r.tasks) {
      nlohmann::json t;
      if (!run.missing.empty()) {
        t["skipped"] = run.missing;
      } else {
        for (const auto& [k, v] : run.metrics.values) t[k] = v;
        for (const auto& [k, v] : run.metrics.stderr_) t[k + "_stderr"] = v;
        t["docs"] = run.metrics.docs;
        t["requests"] = run.metrics.requests;
        t["forwards"] = run.stats.forwards;
        t["request_tokens"] = run.stats.request_tokens;
        t["seconds"] = run.seconds;
      }
      tasks[name] = t;
    }
    all.push_back({{"checkpoint", r.checkpoint},
                   {"iteration", r.iteration},
                   {"precision", r.precision},
                   {"batch_tokens", r.batch_tokens},
                   {"tasks", tasks},
                   {"config", r.config_yaml}});
  }
  return {{"harness", "moetrain eval (lm-evaluation-harness 0.2.0 scoring, zero-shot)"},
          {"task_data", options.task_data},
          {"limit", options.limit},
          {"dropless_moe", options.dropless_moe},
          {"results", all}};
}

nlohmann::ordered_json lm_eval_results_json(const CheckpointResults& r, const std::vector<std::string>& tasks) {
  nlohmann::ordered_json results = nlohmann::ordered_json::object(), versions = nlohmann::ordered_json::object();
  for (const std::string& name : tasks) {
    auto it = r.tasks.find(name);
    if (it == r.tasks.end() || !it->second.missing.empty()) continue;
    const TaskMetrics& m = it->second.metrics;
    const LmEvalTask& lm = lm_eval_task(name);
    std::vector<std::string> order = lm.metrics;  // then any metric lm-eval does not have
    for (const auto& [k, v] : m.values)
      if (std::find(order.begin(), order.end(), k) == order.end()) order.push_back(k);
    nlohmann::ordered_json t = nlohmann::ordered_json::object();
    for (const std::string& k : order) {
      if (!m.values.count(k)) continue;
      t[k] = m.values.at(k);
      if (m.stderr_.count(k)) t[k + "_stderr"] = m.stderr_.at(k);
    }
    results[name] = t;
    versions[name] = lm.version;
  }
  return {{"results", results}, {"versions", versions}};
}

}  // namespace mt::eval
