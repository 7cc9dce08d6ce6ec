#include "eval/tasks.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "runtime/file_util.h"
#include "runtime/rng.h"
#include "runtime/text_util.h"

namespace mt::eval {
namespace fs = std::filesystem;
using nlohmann::json;
namespace {

// Every occurrence of `from` in s replaced by `to`, left to right (Python's str.replace).
void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size()) s.replace(at, from.size(), to);
}

// --- reading task files

// The first of `candidates` (relative to data_dir/<folder>) that exists; else an error that says
// where to put the data.
std::string task_file(const std::string& task, const std::string& data_dir, const std::string& folder,
                      const std::vector<std::string>& candidates, const std::string& how_to_get) {
  for (const std::string& c : candidates) {
    fs::path p = fs::path(data_dir) / folder / c;
    if (fs::exists(p)) return p.string();
  }
  throw MissingTaskData(
      "task " + task + ": no data: expected " + (fs::path(data_dir) / folder / candidates[0]).string() +
      (candidates.size() > 1
           ? " (or " + join(std::vector<std::string>(candidates.begin() + 1, candidates.end()), ", ") + " there)"
           : "") +
      "; " + how_to_get + " (docs/eval.md lists every task's source)");
}

// The lines of `text` that hold more than blanks (the records of a JSON-lines file).
int64_t count_nonblank_lines(const std::string& text) {
  std::istringstream in(text);
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) n += line.find_first_not_of(" \t\r") != std::string::npos;
  return n;
}

// The whitespace-separated words of `text` (one label per line, as PIQA's valid-labels.lst).
std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Calls fn(object, line number) for each non-empty line of a JSON-lines file, up to `limit`.
template <class F>
void for_json_lines(const std::string& task, const std::string& path, int64_t limit, F&& fn) {
  std::istringstream in(read_file(path, "the data of task " + task));
  std::string line;
  int64_t n = 0, line_no = 0;
  while ((limit == 0 || n < limit) && std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      throw Error("task " + task + ": " + path + ":" + std::to_string(line_no) + ": not a JSON object (" + e.what() +
                  ")");
    }
    try {
      fn(j, line_no);
    } catch (const json::exception& e) {
      throw Error("task " + task + ": " + path + ":" + std::to_string(line_no) + ": " + e.what());
    }
    ++n;
  }
}

// A required string field, with an error naming the file, line and field.
std::string field(const json& j, const std::string& name, const std::string& task, const std::string& path,
                  int64_t line) {
  MT_CHECK(j.is_object() && j.contains(name) && j[name].is_string(), "task ", task, ": ", path, ":", line,
           ": missing the text field '", name, "'");
  return j[name].get<std::string>();
}

int64_t code_points(const std::string& s) {  // Python's len() of a str
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// --- aggregation

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / double(v.size());
}

// lm-eval's mean_stderr: the sample standard deviation / sqrt(n)
double mean_stderr(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  double m = mean(v), ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return std::sqrt(ss / double(v.size() - 1)) / std::sqrt(double(v.size()));
}

// exp(-mean(ll)) and its bootstrap standard error (1000 resamples, a fixed seed).
std::pair<double, double> perplexity(const std::vector<double>& ll) {
  double ppl = std::exp(-mean(ll));
  if (ll.size() < 2) return {ppl, 0.0};
  RngKey key = rng_key(1234, 0, 0, 0xB007);
  std::vector<double> samples;
  uint64_t draw = 0;
  for (int b = 0; b < 1000; ++b) {
    double s = 0;
    for (size_t i = 0; i < ll.size(); ++i) s += ll[size_t(uniform_at(key, draw++) * float(ll.size())) % ll.size()];
    samples.push_back(std::exp(-s / double(ll.size())));
  }
  double m = mean(samples), ss = 0;
  for (double x : samples) ss += (x - m) * (x - m);
  return {ppl, std::sqrt(ss / double(samples.size() - 1))};
}

void put(TaskMetrics& m, const std::string& name, const std::vector<double>& per_doc) {
  m.values[name] = mean(per_doc);
  m.stderr_[name] = mean_stderr(per_doc);
}

// The index of the largest value (the first, on ties, as numpy's argmax).
size_t argmax(const std::vector<double>& v) {
  return size_t(std::max_element(v.begin(), v.end()) - v.begin());
}

// --- the tasks

class Lambada final : public EvalTask {
 public:
  std::string name() const override { return "lambada"; }
  std::string main_metric() const override { return "acc"; }
  std::vector<EvalDoc> load(const std::string& dir, int64_t limit) const override {
    std::string path = task_file(name(), dir, "lambada", {"lambada_test.jsonl"},
                                 "OpenAI's LAMBADA test set, lm-eval's lambada_test.jsonl");
    std::vector<EvalDoc> docs;
    for_json_lines(name(), path, limit, [&](const json& j, int64_t line) {
      std::string text = field(j, "text", name(), path, line);
      size_t space = text.rfind(' ');
      MT_CHECK(space != std::string::npos, "task lambada: ", path, ":", line,
               ": the text has no space before its last word");
      EvalDoc d;
      d.context = text.substr(0, space);
      d.choices = {std::string(" ").append(text, space + 1)};  // (not " " + ...: GCC 12's -Wrestrict misfires)
      docs.push_back(std::move(d));
    });
    return docs;
  }
  TaskMetrics aggregate(const std::vector<EvalDoc>&, const std::vector<std::vector<ScoreResult>>& r) const override {
    TaskMetrics m;
    std::vector<double> acc, ll;
    for (const auto& doc : r) {
      acc.push_back(doc[0].greedy ? 1.0 : 0.0);
      ll.push_back(doc[0].logprob);
    }
    put(m, "acc", acc);
    auto [ppl, err] = perplexity(ll);
    m.values["ppl"] = ppl;
    m.stderr_["ppl"] = err;
    return m;
  }
};

// Choices scored by their summed log-likelihood; acc (and acc_norm: divided by the choice's
// character length, when the task gives lengths).
TaskMetrics multiple_choice(const std::vector<EvalDoc>& docs, const std::vector<std::vector<ScoreResult>>& r) {
  TaskMetrics m;
  std::vector<double> acc, acc_norm;
  for (size_t i = 0; i < docs.size(); ++i) {
    std::vector<double> ll;
    for (const ScoreResult& s : r[i]) ll.push_back(s.logprob);
    acc.push_back(int(argmax(ll)) == docs[i].gold ? 1.0 : 0.0);
    if (!docs[i].norm_lengths.empty()) {
      for (size_t c = 0; c < ll.size(); ++c) ll[c] /= docs[i].norm_lengths[c];
      acc_norm.push_back(int(argmax(ll)) == docs[i].gold ? 1.0 : 0.0);
    }
  }
  put(m, "acc", acc);
  if (!acc_norm.empty()) put(m, "acc_norm", acc_norm);
  return m;
}

class Piqa final : public EvalTask {
 public:
  std::string name() const override { return "piqa"; }
  std::string main_metric() const override { return "acc"; }
  std::vector<EvalDoc> load(const std::string& dir, int64_t limit) const override {
    std::string how = "PIQA's dev set: valid.jsonl and valid-labels.lst from the PIQA release";
    std::string path = task_file(name(), dir, "piqa", {"valid.jsonl"}, how);
    std::string labels_path = task_file(name(), dir, "piqa", {"valid-labels.lst"}, how);
    std::vector<std::string> labels = words(read_file(labels_path, "the labels of task piqa"));
    int64_t questions = count_nonblank_lines(read_file(path, "the data of task piqa"));
    MT_CHECK(int64_t(labels.size()) == questions, "task piqa: ", path, " has ", questions, " questions but ",
             labels_path, " has ", labels.size(), " labels; they must pair up line by line (take both files from ",
             "the same PIQA release)");
    std::vector<EvalDoc> docs;
    for_json_lines(name(), path, limit, [&](const json& j, int64_t line) {
      const std::string& label = labels[docs.size()];
      MT_CHECK(label == "0" || label == "1", "task piqa: ", labels_path, ": label ", docs.size() + 1, " is '", label,
               "', not 0 or 1");
      EvalDoc d;
      std::string sol1 = field(j, "sol1", name(), path, line), sol2 = field(j, "sol2", name(), path, line);
      d.context = "Question: " + field(j, "goal", name(), path, line) + "\nAnswer:";
      d.choices = {" " + sol1, " " + sol2};
      d.norm_lengths = {double(code_points(sol1)), double(code_points(sol2))};
      d.gold = label == "1";
      docs.push_back(std::move(d));
    });
    return docs;
  }
  TaskMetrics aggregate(const std::vector<EvalDoc>& docs,
                        const std::vector<std::vector<ScoreResult>>& r) const override {
    return multiple_choice(docs, r);
  }
};

class Boolq final : public EvalTask {
 public:
  std::string name() const override { return "boolq"; }
  std::string main_metric() const override { return "acc"; }
  std::vector<EvalDoc> load(const std::string& dir, int64_t limit) const override {
    std::string path = task_file(name(), dir, "boolq", {"val.jsonl"}, "BoolQ's dev set (SuperGLUE's BoolQ/val.jsonl)");
    std::vector<EvalDoc> docs;
    for_json_lines(name(), path, limit, [&](const json& j, int64_t line) {
      MT_CHECK(j.contains("label"), "task boolq: ", path, ":", line, ": missing the field 'label'");
      const json& l = j["label"];  // "true"/"false" (SuperGLUE), true/false, or 1/0 (HF)
      bool yes = l.is_string() ? l.get<std::string>() == "true" : l.is_boolean() ? l.get<bool>() : l.get<int>() == 1;
      EvalDoc d;
      d.context = field(j, "passage", name(), path, line) + "\nQuestion: " + field(j, "question", name(), path, line) +
                  "?\nAnswer:";
      d.choices = {" yes", " no"};
      d.gold = yes ? 0 : 1;
      docs.push_back(std::move(d));
    });
    return docs;
  }
  TaskMetrics aggregate(const std::vector<EvalDoc>& docs,
                        const std::vector<std::vector<ScoreResult>>& r) const override {
    TaskMetrics m;
    std::vector<double> acc;  // lm-eval: (ll_yes > ll_no) == label; a tie answers "no"
    for (size_t i = 0; i < docs.size(); ++i) acc.push_back((r[i][0].logprob > r[i][1].logprob) == (docs[i].gold == 0));
    put(m, "acc", acc);
    return m;
  }
};

class Race final : public EvalTask {
 public:
  std::string name() const override { return "race"; }
  std::string main_metric() const override { return "acc"; }
  std::vector<EvalDoc> load(const std::string& dir, int64_t limit) const override {
    std::string path = task_file(name(), dir, "race", {"high_test.jsonl"},
                                 "RACE-high's test split as JSON lines (Hugging Face 'race', config 'high', split "
                                 "'test': article, question, options, answer)");
    struct Problem {
      std::string question, answer;
      std::vector<std::string> options;
    };
    std::vector<std::pair<std::string, std::vector<Problem>>> articles;  // in order of first appearance
    for_json_lines(name(), path, 0, [&](const json& j, int64_t line) {
      Problem p;
      std::string article = field(j, "article", name(), path, line);
      p.question = field(j, "question", name(), path, line);
      p.answer = field(j, "answer", name(), path, line);
      MT_CHECK(j.contains("options") && j["options"].is_array() && j["options"].size() == 4 && p.answer.size() == 1 &&
                   p.answer[0] >= 'A' && p.answer[0] <= 'D',
               "task race: ", path, ":", line, ": need 4 options and an answer A-D");
      for (const json& o : j["options"]) p.options.push_back(o.get<std::string>());
      if (articles.empty() || articles.back().first != article) articles.push_back({article, {}});
      articles.back().second.push_back(p);
    });
    std::vector<EvalDoc> docs;
    for (const auto& [article, problems] : articles) {
      if (limit > 0 && int64_t(docs.size()) >= limit) break;
      EvalDoc d;
      d.context = "Article: " + article + "\n\n";
      auto gold_text = [](const Problem& p) { return p.options[size_t(p.answer[0] - 'A')]; };
      for (size_t i = 0; i + 1 < problems.size(); ++i) {
        const std::string& q = problems[i].question;
        if (q.size() >= 6 && q.compare(q.size() - 6, 6, "  _  .") == 0)  // lm-eval's quirk, kept
          d.context += q.substr(q.size() - 5) + gold_text(problems[i]) + "\n";
        else
          d.context += "Question: " + q + "\nAnswer: " + gold_text(problems[i]) + "\n";
      }
      const Problem& last = problems.back();
      d.context += last.question;
      for (const std::string& o : last.options) d.choices.push_back(" " + o);
      d.gold = last.answer[0] - 'A';
      docs.push_back(std::move(d));
    }
    return docs;
  }
  TaskMetrics aggregate(const std::vector<EvalDoc>& docs,
                        const std::vector<std::vector<ScoreResult>>& r) const override {
    return multiple_choice(docs, r);
  }
};

// Right when the greedy path reproduces any of the (pruned) answers.
TaskMetrics any_greedy(const std::vector<std::vector<ScoreResult>>& r) {
  TaskMetrics m;
  std::vector<double> acc;
  for (const auto& doc : r)
    acc.push_back(std::any_of(doc.begin(), doc.end(), [](const ScoreResult& s) { return s.greedy; }) ? 1.0 : 0.0);
  put(m, "acc", acc);
  return m;
}

EvalDoc question_answers(const std::string& question, const std::vector<std::string>& answers) {
  EvalDoc d;
  d.context = "Question: " + question + "\nAnswer:";
  for (const std::string& a : prune_aliases(answers)) d.choices.push_back(" " + a);
  return d;
}

class TriviaQa final : public EvalTask {
 public:
  std::string name() const override { return "triviaqa"; }
  std::string main_metric() const override { return "acc"; }
  std::vector<EvalDoc> load(const std::string& dir, int64_t limit) const override {
    std::string path = task_file(name(), dir, "triviaqa",
                                 {"unfiltered-web-dev.jsonl", "unfiltered-web-dev.json", "triviaqa_sm_sub.jsonl"},
                                 "TriviaQA's unfiltered web dev set (triviaqa-unfiltered.tar.gz from the TriviaQA "
                                 "site), one JSON object per line or the release's JSON file");
    std::vector<EvalDoc> docs;
    auto official = [&](const json& q) {  // {"Question", "Answer": {"Aliases"}}
      std::vector<std::string> aliases = q.at("Answer").at("Aliases").get<std::vector<std::string>>();
      docs.push_back(question_answers(q.at("Question").get<std::string>(), aliases));
    };
    if (path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0) {  // {"Data": [...]}
      json all;
      try {
        all = json::parse(read_file(path));
        for (const json& q : all.at("Data")) {
          if (limit > 0 && int64_t(docs.size()) >= limit) break;
          official(q);
        }
      } catch (const json::exception& e) {
        throw Error("task triviaqa: " + path + ": not TriviaQA's JSON (" + e.what() + ")");
      }
      return docs;
    }
    for_json_lines(name(), path, limit, [&](const json& j, int64_t line) {
      if (j.contains("Question")) return official(j);
      // llm-foundry's subset: the prompt ready-made ("Question: ...\nAnswer:") and the aliases
      MT_CHECK(j.contains("aliases") && j["aliases"].is_array(), "task triviaqa: ", path, ":", line,
               ": neither TriviaQA's Question/Answer nor context/aliases fields");
      EvalDoc d = question_answers("", j["aliases"].get<std::vector<std::string>>());
      d.context = field(j, "context", name(), path, line);
      docs.push_back(std::move(d));
    });
    return docs;
  }
  TaskMetrics aggregate(const std::vector<EvalDoc>&, const std::vector<std::vector<ScoreResult>>& r) const override {
    return any_greedy(r);
  }
};

class WebQs final : public EvalTask {
 public:
  std::string name() const override { return "webqs"; }
  std::string main_metric() const override { return "acc"; }
  std::vector<EvalDoc> load(const std::string& dir, int64_t limit) const override {
    std::string path = task_file(name(), dir, "webquestions", {"webquestions.examples.test.json", "test.jsonl"},
                                 "WebQuestions' test set (webquestions.examples.test.json from the Stanford release)");
    std::vector<EvalDoc> docs;
    if (path.size() > 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0) {  // HF: question, answers
      for_json_lines(name(), path, limit, [&](const json& j, int64_t line) {
        MT_CHECK(j.contains("answers"), "task webqs: ", path, ":", line, ": missing the field 'answers'");
        docs.push_back(
            question_answers(field(j, "question", name(), path, line), j["answers"].get<std::vector<std::string>>()));
      });
      return docs;
    }
    json all;
    try {
      all = json::parse(read_file(path));
    } catch (const json::exception& e) {
      throw Error("task webqs: " + path + ": not a JSON array (" + e.what() + ")");
    }
    MT_CHECK(all.is_array(), "task webqs: ", path, ": expected a JSON array of {utterance, targetValue}");
    for (size_t i = 0; i < all.size() && (limit == 0 || int64_t(docs.size()) < limit); ++i) {
      const json& q = all[i];
      MT_CHECK(q.contains("utterance") && q.contains("targetValue"), "task webqs: ", path, ": entry ", i,
               " has no utterance or targetValue");
      docs.push_back(
          question_answers(q["utterance"].get<std::string>(), webqs_answers(q["targetValue"].get<std::string>())));
    }
    return docs;
  }
  TaskMetrics aggregate(const std::vector<EvalDoc>&, const std::vector<std::vector<ScoreResult>>& r) const override {
    return any_greedy(r);
  }
};

class WikiText final : public EvalTask {
 public:
  std::string name() const override { return "wikitext"; }
  std::string main_metric() const override { return "word_perplexity"; }
  std::vector<EvalDoc> load(const std::string& dir, int64_t limit) const override {
    std::string path = task_file(name(), dir, "wikitext", {"wiki.test.raw"},
                                 "WikiText-2's raw test file (wikitext-2-raw-v1.zip: wikitext-2-raw/wiki.test.raw)");
    std::vector<EvalDoc> docs;
    std::vector<std::string> lines;
    auto flush = [&] {
      std::string doc = join(lines, "\n");
      lines.clear();
      if (doc.find_first_not_of(" \n\t") == std::string::npos) return;
      if (limit > 0 && int64_t(docs.size()) >= limit) return;
      EvalDoc d;
      d.text = wikitext_detokenize(doc);
      // words as re.split(r"\s+", doc) counts them; bytes of the UTF-8 text
      d.words = 1;
      for (size_t i = 0; i < doc.size(); ++i)
        if (std::isspace((unsigned char)doc[i]) && (i == 0 || !std::isspace((unsigned char)doc[i - 1]))) ++d.words;
      d.bytes = int64_t(doc.size());
      docs.push_back(std::move(d));
    };
    std::istringstream in(read_file(path));
    for (std::string line; std::getline(in, line);) {
      // an article starts at a top-level heading " = Title = " (not " = = Section = = ")
      std::string r = line;  // (Python's str.replace, as lm-eval: left to right)
      replace_all(r, "= = =", "===");
      replace_all(r, "= =", "==");
      size_t a = r.find_first_not_of(' '), b = r.find_last_not_of(' ');
      std::string s = a == std::string::npos ? "" : r.substr(a, b - a + 1);
      if (s.size() >= 3 && s.compare(0, 2, "= ") == 0 && s.compare(s.size() - 2, 2, " =") == 0) flush();
      lines.push_back(line);
    }
    flush();
    return docs;
  }
  void requests(const EvalDoc& doc, const data::Gpt2Tokenizer& tok, int64_t max_length,
                std::vector<ScoreRequest>& out) const override {
    for (RollingWindow& w : rolling_windows(tok.encode(doc.text), tok.eod(), max_length))
      out.push_back({std::move(w.context), std::move(w.continuation)});
  }
  TaskMetrics aggregate(const std::vector<EvalDoc>& docs,
                        const std::vector<std::vector<ScoreResult>>& r) const override {
    TaskMetrics m;
    double ll = 0, words = 0, bytes = 0;
    for (size_t i = 0; i < docs.size(); ++i) {
      for (const ScoreResult& s : r[i]) ll += s.logprob;
      words += double(docs[i].words);
      bytes += double(docs[i].bytes);
    }
    m.values["word_perplexity"] = std::exp(-ll / words);
    m.values["byte_perplexity"] = std::exp(-ll / bytes);
    m.values["bits_per_byte"] = -ll / bytes / std::log(2.0);
    return m;
  }
};

}  // namespace

void EvalTask::requests(const EvalDoc& doc, const data::Gpt2Tokenizer& tok, int64_t,
                        std::vector<ScoreRequest>& out) const {
  std::vector<int32_t> context = doc.context.empty() ? std::vector<int32_t>{tok.eod()} : tok.encode(doc.context);
  for (const std::string& c : doc.choices) out.push_back({context, tok.encode(c)});
}

const std::vector<std::string>& eval_task_names() {
  static const std::vector<std::string> names = {"lambada", "piqa", "boolq", "race", "triviaqa", "webqs", "wikitext"};
  return names;
}

std::unique_ptr<EvalTask> make_eval_task(const std::string& name) {
  if (name == "lambada") return std::make_unique<Lambada>();
  if (name == "piqa") return std::make_unique<Piqa>();
  if (name == "boolq") return std::make_unique<Boolq>();
  if (name == "race") return std::make_unique<Race>();
  if (name == "triviaqa") return std::make_unique<TriviaQa>();
  if (name == "webqs") return std::make_unique<WebQs>();
  if (name == "wikitext") return std::make_unique<WikiText>();
  std::string best = closest_name(name, eval_task_names());
  throw Error("unknown task '" + name + "'" + (best.empty() ? "" : "; did you mean '" + best + "'?") +
              " (tasks: " + join(eval_task_names()) + ")");
}

TaskMetrics run_eval_task(const EvalTask& task, LogitSource& source, const data::Gpt2Tokenizer& tok,
                          const std::string& data_dir, int64_t limit, const ScoreOptions& options, ScoreStats* stats) {
  std::vector<EvalDoc> docs = task.load(data_dir, limit);
  MT_CHECK(!docs.empty(), "task ", task.name(), ": no documents in its data under '", data_dir, "'");
  std::vector<ScoreRequest> requests;
  std::vector<size_t> first(docs.size() + 1, 0);
  int64_t max_length = options.max_length > 0 ? options.max_length : source.max_length();
  for (size_t i = 0; i < docs.size(); ++i) {
    first[i] = requests.size();
    task.requests(docs[i], tok, max_length, requests);
  }
  first[docs.size()] = requests.size();
  std::vector<ScoreResult> results = score(source, requests, options, stats);
  std::vector<std::vector<ScoreResult>> per_doc(docs.size());
  for (size_t i = 0; i < docs.size(); ++i)
    per_doc[i].assign(results.begin() + std::ptrdiff_t(first[i]), results.begin() + std::ptrdiff_t(first[i + 1]));
  TaskMetrics m = task.aggregate(docs, per_doc);
  m.docs = int64_t(docs.size());
  m.requests = int64_t(requests.size());
  return m;
}

std::vector<std::string> prune_aliases(std::vector<std::string> aliases) {
  std::sort(aliases.begin(), aliases.end());
  std::vector<std::string> kept;
  for (const std::string& a : aliases)
    if (kept.empty() || a.compare(0, kept.back().size(), kept.back()) != 0) kept.push_back(a);
  return kept;
}

std::vector<std::string> webqs_answers(const std::string& target_value) {
  std::vector<std::string> out;
  const std::string open = "(description ";
  for (size_t at = target_value.find(open); at != std::string::npos; at = target_value.find(open, at)) {
    at += open.size();
    size_t end;
    if (at < target_value.size() && target_value[at] == '"') {  // (description "X Y")
      end = target_value.find("\")", at + 1);
      MT_CHECK(end != std::string::npos, "webqs: unterminated quoted answer in '", target_value, "'");
      out.push_back(target_value.substr(at + 1, end - at - 1));
    } else {  // (description X)
      end = target_value.find(')', at);
      MT_CHECK(end != std::string::npos, "webqs: unterminated answer in '", target_value, "'");
      out.push_back(target_value.substr(at, end - at));
    }
    at = end;
  }
  return out;
}

std::vector<RollingWindow> rolling_windows(const std::vector<int32_t>& tokens, int32_t prefix, int64_t max_length) {
  std::vector<RollingWindow> out;
  if (tokens.empty()) return out;
  size_t n = tokens.size(), len = size_t(max_length);
  size_t first = std::min(len, n);
  out.push_back({{prefix}, std::vector<int32_t>(tokens.begin(), tokens.begin() + std::ptrdiff_t(first))});
  for (size_t predicted = first; predicted < n;) {
    size_t pred = std::min(n - predicted, len), end = predicted + pred;
    // the window is tokens[end - len - 1, end): the context before the predicted part, then it
    out.push_back(
        {std::vector<int32_t>(tokens.begin() + std::ptrdiff_t(end - len - 1),
                              tokens.begin() + std::ptrdiff_t(end - pred)),
         std::vector<int32_t>(tokens.begin() + std::ptrdiff_t(end - pred), tokens.begin() + std::ptrdiff_t(end))});
    predicted = end;
  }
  return out;
}

std::string wikitext_detokenize(const std::string& text) {
  std::string s = text;
  auto replace = [&](const std::string& from, const std::string& to) { replace_all(s, from, to); };
  auto regex_all = [&](const char* pattern, const char* format) {
    s = std::regex_replace(s, std::regex(pattern), format);
  };
  // contractions
  replace("s '", "s'");
  regex_all("/' [0-9]/", "/'[0-9]/");
  // number separators
  replace(" @-@ ", "-");
  replace(" @,@ ", ",");
  replace(" @.@ ", ".");
  // punctuation
  for (const char* p : {" : ", " ; ", " . ", " ! ", " ? ", " , "}) replace(p, std::string(p + 1));
  // brackets and quotes: no spaces inside
  regex_all("\\(\\s*([^\\)]*?)\\s*\\)", "($1)");
  regex_all("\\[\\s*([^\\]]*?)\\s*\\]", "[$1]");
  regex_all("\\{\\s*([^}]*?)\\s*\\}", "{$1}");
  regex_all("\"\\s*([^\"]*?)\\s*\"", "\"$1\"");
  regex_all("'\\s*([^']*?)\\s*'", "'$1'");
  // headings and the rest
  replace("= = = =", "====");
  replace("= = =", "===");
  replace("= =", "==");
  replace(" \xC2\xB0 ", "\xC2\xB0");  // degree sign
  replace(" \n", "\n");
  replace("\n ", "\n");
  replace(" N ", " 1 ");
  replace(" 's", "'s");
  return s;
}

}  // namespace mt::eval
