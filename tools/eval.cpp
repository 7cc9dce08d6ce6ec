// `moetrain eval --load DIR [DIR ...] --tasks lambada,piqa,... --task-data DIR [--limit N]
// [--output results.json]`: zero-shot evaluation of checkpoints (eval/harness.h). It also takes
// the flags of Megatron-DeepSpeed's ds_evalharness.sh / tasks/eval_harness/evaluate.py
// (--task_list, --results_path, ...; docs/eval.md, "From ds_evalharness.sh").
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "eval/harness.h"
#include "parallel/communicator.h"
#include "runtime/file_util.h"
#include "toolkit/evaluate_checkpoint.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mt::cli {
namespace {

// evaluate.py's flags that take a value, besides the model shape flags (toolkit::model_shape_flags).
const std::vector<std::string> kMegatronValueFlags = {"task_list",
                                                      "results_path",
                                                      "micro-batch-size",
                                                      "tensor-model-parallel-size",
                                                      "pipeline-model-parallel-size",
                                                      "moe-expert-parallel-size",
                                                      "vocab-file",
                                                      "merge-file",
                                                      "tokenizer-type",
                                                      "deepspeed_config",
                                                      "num_fewshot"};
// evaluate.py's switches. Those not read below change nothing here (docs/eval.md says why).
const std::vector<std::string> kMegatronSwitches = {
    "adaptive_seq_len",           "eval_fp32", "inference",           "no-load-optim", "no-load-rng",
    "disable-moe-token-dropping", "deepspeed", "no-pipeline-parallel"};

// A comma-separated task list (`all`: every task), each name checked before any model loads.
std::vector<std::string> parse_tasks(const std::string& flag, const std::string& list) {
  if (list == "all") return eval::eval_task_names();
  std::vector<std::string> tasks;
  std::stringstream ss(list);
  for (std::string t; std::getline(ss, t, ',');) {
    if (t.empty()) continue;
    try {
      eval::make_eval_task(t);
    } catch (const Error&) {
      throw Error("--" + flag + ": moetrain eval has no task '" + t + "'; it scores " +
                  join(eval::eval_task_names(), ",") + " (lm-evaluation-harness 0.2.0's definitions), or all");
    }
    tasks.push_back(t);
  }
  MT_CHECK(!tasks.empty(), "--", flag, " names no task (tasks: ", join(eval::eval_task_names(), ","), ")");
  return tasks;
}

// The parallel-layout flags: each rank holds the whole model (a checkpoint saved under any layout
// loads whole), so tensor, pipeline and expert parallelism stay 1; mpirun splits the requests.
void check_layout_flags(const ArgParser& p) {
  for (const char* flag : {"tensor-model-parallel-size", "moe-expert-parallel-size"}) {
    int64_t n = p.get_int(flag, 1);
    MT_CHECK(n == 1, "--", flag, " ", n,
             ": moetrain eval does not split a model over ranks; every rank holds the whole model, which loads from "
             "a checkpoint saved under any layout. Pass --",
             flag, " 1 (or leave it out) and use `mpirun -np N moetrain eval ...` to split the requests over N ranks");
  }
  int64_t pp = p.get_int("pipeline-model-parallel-size", 1);
  MT_CHECK(pp == 1, "--pipeline-model-parallel-size ", pp,
           ": pipeline parallelism is not supported (moetrain's model is never split into pipeline stages); pass 1 "
           "or leave it out");
  int64_t shots = p.get_int("num_fewshot", 0);
  MT_CHECK(shots == 0, "--num_fewshot ", shots,
           ": moetrain eval is zero-shot only (DeepSpeed-MoE's Table 1); pass 0 or leave it out");
  std::string tokenizer = p.get("tokenizer-type", "GPT2BPETokenizer");
  MT_CHECK(tokenizer == "GPT2BPETokenizer", "--tokenizer-type ", tokenizer,
           ": moetrain reads the GPT-2 BPE only; pass GPT2BPETokenizer (with --vocab-file and --merge-file) or "
           "leave it out");
}

// --deepspeed_config FILE: read and checked to be a JSON object, as DeepSpeed would; none of its keys
// changes an evaluation here (docs/eval.md).
void check_deepspeed_config(const std::string& path) {
  std::string text = read_file(path, "--deepspeed_config file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error("--deepspeed_config '" + path + "' is not valid JSON: " + e.what());
  }
  MT_CHECK(j.is_object(), "--deepspeed_config '", path, "' must hold a JSON object ({...})");
}

// The per-checkpoint options: precision, batching, tokenizer files and the shape to check.
toolkit::CheckpointEvalOptions checkpoint_options(const ArgParser& p) {
  toolkit::CheckpointEvalOptions load;
  load.precision = p.get("precision", "fp32");
  const auto& precisions = toolkit::eval_precisions();
  MT_CHECK(std::find(precisions.begin(), precisions.end(), load.precision) != precisions.end(),
           "--precision must be one of ", join(precisions, ", "), ", got '", load.precision, "'");
  MT_CHECK(!p.flag("eval_fp32") || load.precision == "fp32", "--eval_fp32 asks for fp32 and --precision for ",
           load.precision, ": give one of them");
  MT_CHECK(!(p.has("micro-batch-size") && p.has("batch-tokens")),
           "--micro-batch-size and --batch-tokens both set the tokens per forward: give one of them");
  load.micro_batch_size = p.get_int("micro-batch-size", 0);
  MT_CHECK(!p.has("micro-batch-size") || load.micro_batch_size > 0, "--micro-batch-size must be positive, got ",
           load.micro_batch_size);
  load.vocab_file = p.get("vocab-file");
  load.merge_file = p.get("merge-file");
  for (const std::string& flag : toolkit::model_shape_flags())
    if (p.has(flag)) load.shape.emplace_back(flag, p.get_int(flag, -1));
  return load;
}

}  // namespace

int run_eval(const Args& args) {
  std::vector<std::string> value_flags = {"tasks", "task-data", "limit", "output", "batch-tokens", "precision"};
  value_flags.insert(value_flags.end(), kMegatronValueFlags.begin(), kMegatronValueFlags.end());
  value_flags.insert(value_flags.end(), toolkit::model_shape_flags().begin(), toolkit::model_shape_flags().end());
  std::vector<std::string> bool_flags = {"help", "moe-token-dropping", "quiet"};
  bool_flags.insert(bool_flags.end(), kMegatronSwitches.begin(), kMegatronSwitches.end());
  ArgParser p("eval", value_flags, bool_flags, {"load"});
  p.parse(args);
  if (p.flag("help")) {
    std::printf(
        "usage: moetrain eval --load DIR [DIR ...] [--tasks T1,T2,...] [--task-data DIR] [options]\n\n"
        "Zero-shot evaluation as lm-evaluation-harness 0.2.0 scores it (DeepSpeed-MoE's Table 1).\n\n"
        "  --load DIR ...        checkpoint folders, or save folders (their 'latest'); one table row each\n"
        "  --tasks LIST          comma-separated, default all: %s\n"
        "  --task-data DIR       folder with <task>/<file> (default data/eval; docs/eval.md lists the files)\n"
        "  --limit N             the first N documents of each task (default: all)\n"
        "  --output FILE         also write every metric, stderr, counts and config as JSON\n"
        "  --batch-tokens N      tokens per forward (default 4096)\n"
        "  --precision P         the GEMMs' precision: fp32 (default), bf16, fp16, or checkpoint (the\n"
        "                        training's)\n"
        "  --moe-token-dropping  keep the capacity limit (default: dropless, as DeepSpeed's harness)\n"
        "  --quiet               no progress lines\n"
        "Under mpirun the requests are split over the ranks.\n\n"
        "Megatron-DeepSpeed's ds_evalharness.sh / tasks/eval_harness/evaluate.py flags (docs/eval.md):\n"
        "  --task_list LIST      as --tasks ('all': every task above)\n"
        "  --results_path FILE   also write lm-evaluation-harness's JSON ({\"results\": ..., \"versions\": ...});\n"
        "                        one --load\n"
        "  --micro-batch-size N  tokens per forward = N x the checkpoint's seq_length (instead of --batch-tokens)\n"
        "  --eval_fp32           --precision fp32 (the default)\n"
        "  --disable-moe-token-dropping  dropless MoE (the default)\n"
        "  --vocab-file F, --merge-file F  the GPT-2 BPE files instead of the checkpoint's\n"
        "  --num-layers, --hidden-size, --num-attention-heads, --seq-length, --max-position-embeddings N\n"
        "                        -1: the checkpoint's; any other value must be the checkpoint's\n"
        "  accepted with these values only: --tensor-model-parallel-size 1, --pipeline-model-parallel-size 1,\n"
        "    --moe-expert-parallel-size 1, --tokenizer-type GPT2BPETokenizer, --num_fewshot 0\n"
        "  accepted for compatibility, changing nothing: --adaptive_seq_len (batches are always padded to\n"
        "    their longest request), --inference, --no-load-optim, --no-load-rng (never loaded), --deepspeed,\n"
        "    --deepspeed_config FILE (checked to be JSON; no key of it matters here), --no-pipeline-parallel\n",
        join(eval::eval_task_names(), ",").c_str());
    return 0;
  }
  MT_CHECK(!p.get_list("load").empty(), "--load DIR is required (see `moetrain eval --help`)");
  MT_CHECK(p.positional().empty(), "unexpected argument '", p.positional().empty() ? "" : p.positional()[0], "'");
  MT_CHECK(!(p.has("tasks") && p.has("task_list")), "--tasks and --task_list both name the tasks: give one of them");
  MT_CHECK(!(p.flag("moe-token-dropping") && p.flag("disable-moe-token-dropping")),
           "--moe-token-dropping keeps the capacity limit and --disable-moe-token-dropping removes it: give one");
  MT_CHECK(!p.has("results_path") || p.get_list("load").size() == 1,
           "--results_path writes one checkpoint's results (as evaluate.py); give one --load, or use --output for ",
           p.get_list("load").size(), " checkpoints");
  check_layout_flags(p);
  if (p.has("deepspeed_config")) check_deepspeed_config(p.get("deepspeed_config"));
  eval::EvalOptions opt;
  if (p.has("task_list"))
    opt.tasks = parse_tasks("task_list", p.get("task_list"));
  else if (p.has("tasks"))
    opt.tasks = parse_tasks("tasks", p.get("tasks"));
  else
    opt.tasks = eval::eval_task_names();
  opt.task_data = p.get("task-data", "data/eval");
  opt.limit = p.get_int("limit", 0);
  MT_CHECK(opt.limit >= 0, "--limit must be 0 (all documents) or more, got ", opt.limit);
  opt.batch_tokens = p.get_int("batch-tokens", 4096);
  MT_CHECK(opt.batch_tokens > 0, "--batch-tokens must be positive, got ", opt.batch_tokens);
  opt.dropless_moe = !p.flag("moe-token-dropping");
  opt.verbose = !p.flag("quiet");
  toolkit::CheckpointEvalOptions load = checkpoint_options(p);
  parallel::Communicator& world = parallel::world();
  if (world.size() > 1) opt.ranks = &world;
  std::vector<eval::CheckpointResults> results;
  for (const std::string& dir : p.get_list("load")) results.push_back(toolkit::evaluate_checkpoint(dir, opt, load));
  bool lead = world.rank() == 0;
  bool any = false;
  for (const auto& r : results)
    for (const auto& [name, run] : r.tasks) any |= run.missing.empty();
  if (lead) {
    std::printf("%s", eval::results_table(results, opt.tasks).c_str());
    if (p.has("output")) {
      write_file_atomically(p.get("output"), eval::results_json(results, opt).dump(2) + "\n");
      std::printf("wrote %s\n", p.get("output").c_str());
    }
    if (p.has("results_path")) {
      write_file_atomically(p.get("results_path"), eval::lm_eval_results_json(results[0], opt.tasks).dump(4) + "\n");
      std::printf("wrote %s\n", p.get("results_path").c_str());
    }
  }
  MT_CHECK(any, "no task had its data under '", opt.task_data,
           "' (see docs/eval.md for the files and where to get them)");
  return 0;
}

}  // namespace mt::cli
