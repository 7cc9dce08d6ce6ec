// The zero-shot tasks of DeepSpeed-MoE's Table 1 (and WikiText), as lm-evaluation-harness 0.2.0
// defines them (lm_eval/tasks/*.py; docs/eval.md): each file format read as it ships, each document
// turned into prompts, the prompts into log-likelihood requests (eval/scoring.h), and the
// results into the task's metrics.
//
//   task      file under --task-data                         prompt -> continuations           metrics
//   lambada   lambada/lambada_test.jsonl                     text up to its last space -> " word"   acc (greedy), ppl
//   piqa      piqa/valid.jsonl + valid-labels.lst            "Question: g\nAnswer:" -> " sol1"|" sol2" acc, acc_norm
//   boolq     boolq/val.jsonl                                "{passage}\nQuestion: {q}?\nAnswer:" -> " yes"|" no"  acc
//   race      race/high_test.jsonl (HF rows, one per question) per article; the last question's 4 options  acc
//   triviaqa  triviaqa/unfiltered-web-dev.jsonl, or triviaqa_sm_sub.jsonl   "Question: q\nAnswer:" -> each alias  acc
//   (any greedy) webqs     webquestions/webquestions.examples.test.json, or webqs/test.jsonl    the same acc (any
//   greedy) wikitext  wikitext/wiki.test.raw                         rolling windows of each article word_perplexity,
//   byte_perplexity, bits_per_byte
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/gpt2_tokenizer.h"
#include "eval/scoring.h"

namespace mt::eval {

// A task whose data file is not there (the message says where to put it and where to get it).
class MissingTaskData : public Error {
 public:
  using Error::Error;
};

// One document: a prompt and its continuations (text), or a text scored by rolling windows.
struct EvalDoc {
  std::string context;
  std::vector<std::string> choices;  // each scored after the context (lambada: one)
  int gold = -1;                     // the right choice (piqa, boolq, race)
  std::vector<double> norm_lengths;  // acc_norm divisors: the choices' character lengths (piqa)
  std::string text;                  // rolling tasks: the document (already detokenized)
  int64_t words = 0, bytes = 0;      // rolling tasks: counted on the original document
};

struct TaskMetrics {
  std::map<std::string, double> values;   // "acc", "acc_norm", "ppl", "word_perplexity", ...
  std::map<std::string, double> stderr_;  // the same keys, where defined
  int64_t docs = 0, requests = 0;
};

class EvalTask {
 public:
  virtual ~EvalTask() = default;
  virtual std::string name() const = 0;
  virtual std::string main_metric() const = 0;  // the table's column
  // Reads the task's file(s) under data_dir: at most `limit` documents (0: all), in file order.
  virtual std::vector<EvalDoc> load(const std::string& data_dir, int64_t limit) const = 0;
  // The requests of one document (appended), and the document's metrics from their results.
  virtual void requests(const EvalDoc& doc, const data::Gpt2Tokenizer& tok, int64_t max_length,
                        std::vector<ScoreRequest>& out) const;
  virtual TaskMetrics aggregate(const std::vector<EvalDoc>& docs,
                                const std::vector<std::vector<ScoreResult>>& results) const = 0;
};

// The known task names, in table order.
const std::vector<std::string>& eval_task_names();
// A task by name; an unknown name is an error listing the known ones.
std::unique_ptr<EvalTask> make_eval_task(const std::string& name);

// Runs one task: load, tokenize, score, aggregate.
TaskMetrics run_eval_task(const EvalTask& task, LogitSource& source, const data::Gpt2Tokenizer& tok,
                          const std::string& data_dir, int64_t limit, const ScoreOptions& options,
                          ScoreStats* stats = nullptr);

// --- pieces with their own tests
// lm-eval's WikiText detokenizer (the same rules as Megatron's tasks/zeroshot_gpt/detokenizer.py).
std::string wikitext_detokenize(const std::string& text);
// Answer aliases for the greedy test: sorted, keeping each only if it does not start with the
// last kept one.
std::vector<std::string> prune_aliases(std::vector<std::string> aliases);
// WebQuestions' raw targetValue "(list (description X) (description \"Y Z\"))" -> {"X", "Y Z"}.
std::vector<std::string> webqs_answers(const std::string& target_value);
// lm-eval's rolling windows over a token list: (input, number of scored positions at its end,
// the predicted tokens), the first window prefixed with `prefix` (EOD).
struct RollingWindow {
  std::vector<int32_t> context, continuation;
};
std::vector<RollingWindow> rolling_windows(const std::vector<int32_t>& tokens, int32_t prefix, int64_t max_length);

}  // namespace mt::eval
