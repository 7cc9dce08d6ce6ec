// The results files of `moetrain eval`: lm-evaluation-harness 0.2.0's layout (what
// Megatron-DeepSpeed's evaluate.py writes to --results_path) and our own (--output) hold the same
// numbers; tasks that did not run are left out of the former; every task has an lm-eval version.
#include <catch2/catch.hpp>

#include "eval/harness.h"

using namespace mt;
using namespace mt::eval;

namespace {

// A task's run with the given metrics and standard errors.
TaskRun run_with(std::map<std::string, double> values, std::map<std::string, double> errors) {
  TaskRun run;
  run.metrics.values = std::move(values);
  run.metrics.stderr_ = std::move(errors);
  run.metrics.docs = 3;
  run.metrics.requests = 6;
  return run;
}

CheckpointResults example_results() {
  CheckpointResults r;
  r.checkpoint = "runs/x/iter_0000004";
  r.iteration = 4;
  r.tasks["lambada"] = run_with({{"acc", 0.25}, {"ppl", 1234.5}}, {{"acc", 0.125}, {"ppl", 99.0}});
  r.tasks["piqa"] = run_with({{"acc", 0.5}, {"acc_norm", 0.75}}, {{"acc", 0.1}, {"acc_norm", 0.2}});
  r.tasks["wikitext"] = run_with({{"word_perplexity", 3000.0}, {"byte_perplexity", 4.5}, {"bits_per_byte", 2.17}}, {});
  r.tasks["boolq"].missing = "task boolq: no file";
  return r;
}

}  // namespace

TEST_CASE("lm-eval's results layout: results and versions, lm-eval's metric order", "[eval][harness]") {
  CheckpointResults r = example_results();
  std::vector<std::string> tasks = {"wikitext", "lambada", "boolq", "piqa"};
  nlohmann::ordered_json j = lm_eval_results_json(r, tasks);
  // exactly the two keys evaluate.py writes
  REQUIRE(j.size() == 2);
  REQUIRE(j.begin().key() == "results");
  REQUIRE(j.contains("versions"));
  // the tasks in the order given, the one without data left out (lm-eval would have failed)
  std::vector<std::string> names;
  for (const auto& [name, value] : j["results"].items()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"wikitext", "lambada", "piqa"});
  std::vector<std::string> versioned;
  for (const auto& [name, value] : j["versions"].items()) versioned.push_back(name);
  CHECK(versioned == names);
  CHECK(j["versions"]["lambada"] == 0);
  CHECK(j["versions"]["piqa"] == 0);
  CHECK(j["versions"]["wikitext"] == 1);
  // each metric followed by its stderr where lm-eval has one, in lm-eval's order
  std::vector<std::string> lambada;
  for (const auto& [k, v] : j["results"]["lambada"].items()) lambada.push_back(k);
  CHECK(lambada == std::vector<std::string>{"ppl", "ppl_stderr", "acc", "acc_stderr"});
  std::vector<std::string> wikitext;
  for (const auto& [k, v] : j["results"]["wikitext"].items()) wikitext.push_back(k);
  CHECK(wikitext == std::vector<std::string>{"word_perplexity", "byte_perplexity", "bits_per_byte"});
  CHECK(j["results"]["piqa"]["acc_norm_stderr"].get<double>() == 0.2);
}

TEST_CASE("lm-eval's layout and ours hold the same numbers", "[eval][harness]") {
  CheckpointResults r = example_results();
  std::vector<std::string> tasks = {"lambada", "piqa", "boolq", "wikitext"};
  nlohmann::ordered_json lm = nlohmann::ordered_json::parse(lm_eval_results_json(r, tasks).dump(4));
  EvalOptions opt;
  opt.tasks = tasks;
  nlohmann::json ours = nlohmann::json::parse(results_json({r}, opt).dump(2))["results"][0]["tasks"];
  CHECK(ours["boolq"].contains("skipped"));
  int compared = 0;
  for (const auto& [task, metrics] : lm["results"].items())
    for (const auto& [metric, value] : metrics.items()) {
      INFO(task << " " << metric);
      CHECK(value.get<double>() == ours[task][metric].get<double>());
      ++compared;
    }
  CHECK(compared == 4 + 4 + 3);
}

TEST_CASE("every task has an lm-eval version", "[eval][harness]") {
  CheckpointResults r;
  for (const std::string& name : eval_task_names()) r.tasks[name] = run_with({{"acc", 0.5}}, {{"acc", 0.1}});
  nlohmann::ordered_json j = lm_eval_results_json(r, eval_task_names());
  CHECK(j["versions"].size() == eval_task_names().size());
  CHECK(j["versions"]["boolq"] == 1);  // SuperGLUE's BoolQ is version 1 in lm-eval 0.2.0
}
