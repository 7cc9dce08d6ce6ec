// `moetrain eval`: zero-shot tasks (eval/tasks.h) over one or more checkpoints, a table
// shaped like DeepSpeed-MoE's Table 1 (rows = checkpoints, columns = tasks), and a JSON file with
// every metric, its standard error, the counts and each checkpoint's configuration. Tasks whose
// data is missing are reported and skipped; a malformed file stops with its file and line.
// Under mpirun the requests of each task are split over the ranks (eval/scoring.h).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/tasks.h"
#include "parallel/communicator.h"

namespace mt::eval {

struct EvalOptions {
  std::vector<std::string> tasks;           // empty: all of eval_task_names()
  std::string task_data;                    // the folder holding <task>/<file>
  int64_t limit = 0;                        // documents per task (the first ones); 0 = all
  int64_t batch_tokens = 4096;              // tokens per forward
  bool dropless_moe = true;                 // as DeepSpeed's harness (--disable-moe-token-dropping)
  bool verbose = true;                      // progress lines (rank 0)
  parallel::Communicator* ranks = nullptr;  // split the work over these ranks
};

struct TaskRun {
  TaskMetrics metrics;
  ScoreStats stats;
  double seconds = 0;
  std::string missing;  // why the task did not run (its data is missing); empty when it ran
};

struct CheckpointResults {
  std::string checkpoint;
  int64_t iteration = 0;
  std::string config_yaml;
  std::string precision = "fp32";  // the GEMMs' precision the model was evaluated in (fp32 | bf16 | fp16)
  int64_t batch_tokens = 0;        // tokens per forward it was evaluated with
  std::map<std::string, TaskRun> tasks;
};

// Evaluates a model already loaded (also used during training).
std::map<std::string, TaskRun> evaluate_model(const nn::GptModel& model, const data::Gpt2Tokenizer& tok,
                                              const EvalOptions& options);

// The Markdown table: one row per checkpoint, a column per task's metrics (accuracies in %).
std::string results_table(const std::vector<CheckpointResults>& results, const std::vector<std::string>& tasks);
// Our JSON (`--output`): every checkpoint's metrics with their standard errors, counts, seconds and
// configuration.
nlohmann::json results_json(const std::vector<CheckpointResults>& results, const EvalOptions& options);
// The JSON Megatron-DeepSpeed's tasks/eval_harness/evaluate.py writes to --results_path (what
// lm-evaluation-harness 0.2.0's evaluator.evaluate returns): {"results": {task: {metric: value,
// metric + "_stderr": value, ...}}, "versions": {task: the task's VERSION}}, tasks in the order
// given, metrics in lm-eval's order, a stderr only where lm-eval gives one; tasks that did not run are left out.
nlohmann::ordered_json lm_eval_results_json(const CheckpointResults& results, const std::vector<std::string>& tasks);

}  // namespace mt::eval
