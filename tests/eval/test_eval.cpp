// Zero-shot evaluation: the scoring logic against a controlled model (hand-computed answers),
// batching and prefix sharing against one request at a time on a real GPT, each task's parser on
// real lines (assets/eval), acc_norm, the WikiText detokenizer and rolling windows, answer
// pruning, and the errors for missing or malformed files.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "../train/training_fixtures.h"
#include "autograd/tape.h"
#include "eval/harness.h"
#include "eval/tasks.h"
#include "nn/gpt.h"
#include "tiny_gpt.h"

using namespace mt;
using namespace mt::train;
using namespace mt::eval;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

const std::string kAssets = MOETRAIN_SOURCE_DIR "/assets/eval";

// A controlled model over a vocabulary of 4: the next-token distribution depends only on the
// current token, p(next | cur) = table[cur]; logits are log p, so log-softmax gives log p back.
// It records the token batches it is given.
class BigramSource final : public LogitSource {
 public:
  std::vector<std::vector<double>> table = {
      {0.1, 0.2, 0.3, 0.4}, {0.7, 0.1, 0.1, 0.1}, {0.25, 0.25, 0.4, 0.1}, {0.05, 0.05, 0.8, 0.1}};
  int64_t max_len = 8;
  std::vector<Tensor> seen;
  int64_t max_length() const override { return max_len; }
  int64_t vocab_size() const override { return 4; }
  Tensor logits_at(const Tensor& tokens, const std::vector<int64_t>& rows) override {
    seen.push_back(tokens.clone());
    std::vector<double> out;
    for (int64_t r : rows)
      for (double p : table[size_t(tokens.data<int32_t>()[r])]) out.push_back(std::log(p));
    return Tensor::from_vector(out, {int64_t(rows.size()), 4});
  }
};

nn::GptConfig small_gpt() {
  nn::GptConfig c = testutil::tiny_gpt();
  c.init_method_std = 0.5;
  return c;
}

}  // namespace

TEST_CASE("loglikelihood of a continuation: hand-computed sums and greedy flags", "[eval][scoring]") {
  BigramSource m;
  std::vector<ScoreRequest> req = {{{1}, {0, 3}},   // log p(0|1) + log p(3|0); argmax after 1 is 0, after 0 is 3
                                   {{1}, {0, 2}},   // second token not the argmax
                                   {{3, 2}, {2}}};  // argmax after 2 is 2
  std::vector<ScoreResult> r = score(m, req);
  REQUIRE(r[0].logprob == Approx(std::log(0.7) + std::log(0.4)).epsilon(1e-12));
  REQUIRE(r[0].greedy);
  REQUIRE(r[1].logprob == Approx(std::log(0.7) + std::log(0.3)).epsilon(1e-12));
  REQUIRE_FALSE(r[1].greedy);
  REQUIRE(r[2].logprob == Approx(std::log(0.4)).epsilon(1e-12));
  REQUIRE(r[2].greedy);
}

TEST_CASE("requests are left-truncated to max_length + 1 and prefixes share a forward", "[eval][scoring]") {
  BigramSource m;
  m.max_len = 4;
  // full = [1,2,3,0,1,2,3] (7 tokens): kept = the last 5, input = [3,0,1,2], scored: the last 2
  ScoreStats st;
  std::vector<ScoreResult> r = score(m, {{{1, 2, 3, 0, 1}, {2, 3}}}, {}, &st);
  REQUIRE(m.seen.size() == 1);
  REQUIRE(m.seen[0].to_double_vector() == std::vector<double>{3, 0, 1, 2});
  REQUIRE(r[0].logprob == Approx(std::log(0.1) + std::log(0.1)).epsilon(1e-12));
  // BoolQ-style: one context, two single-token answers -> one forward of the context
  m.seen.clear();
  std::vector<ScoreResult> yn = score(m, {{{2, 1}, {0}}, {{2, 1}, {3}}, {{2, 1, 0}, {3}}}, {}, &st);
  REQUIRE(st.forwards == 1);
  REQUIRE(m.seen.size() == 1);
  REQUIRE(yn[0].logprob == Approx(std::log(0.7)));
  REQUIRE(yn[1].logprob == Approx(std::log(0.1)));
  REQUIRE(yn[2].logprob == Approx(std::log(0.4)));
  REQUIRE_THROWS_WITH(score(m, {{{}, {1}}}), Contains("the context is empty"));
  REQUIRE_THROWS_WITH(score(m, {{{1}, {}}}), Contains("the continuation is empty"));
}

TEST_CASE("a GPT scores the same in batches as one request at a time, and as its full logits", "[eval][scoring]") {
  nn::GptModel model(small_gpt());
  GptLogitSource src(model, 50);  // logits cut to a real vocabulary of 50 (of 64 padded)
  std::vector<ScoreRequest> req;
  for (int i = 0; i < 9; ++i) {
    std::vector<int32_t> ctx, cont;
    for (int j = 0; j < 2 + i % 5; ++j) ctx.push_back(int32_t((7 * i + 3 * j) % 50));
    for (int j = 0; j < 1 + i % 3; ++j) cont.push_back(int32_t((5 * i + j + 1) % 50));
    req.push_back({ctx, cont});
  }
  req.push_back({req[3].context, {req[3].continuation[0]}});  // a prefix of request 3
  ScoreOptions batched, alone;
  batched.batch_tokens = 4096;
  alone.batch_tokens = 1;
  std::vector<ScoreResult> a = score(src, req, batched), b = score(src, req, alone);
  for (size_t i = 0; i < req.size(); ++i) {
    REQUIRE(a[i].logprob == Approx(b[i].logprob).epsilon(1e-12));
    REQUIRE(a[i].greedy == b[i].greedy);
    // direct: log-softmax over the first 50 logits of the whole sequence's forward
    std::vector<int32_t> full = req[i].context;
    full.insert(full.end(), req[i].continuation.begin(), req[i].continuation.end());
    Tensor tokens =
        Tensor::from_vector(std::vector<int32_t>(full.begin(), full.end() - 1), {1, int64_t(full.size()) - 1});
    NoGradGuard no_grad;
    std::vector<double> logits = model.logits(tokens).value().to_double_vector();
    double want = 0;
    for (size_t k = 0; k < req[i].continuation.size(); ++k) {
      size_t pos = req[i].context.size() - 1 + k;
      double mx = -1e300, sum = 0;
      for (int v = 0; v < 50; ++v) mx = std::max(mx, logits[pos * 64 + size_t(v)]);
      for (int v = 0; v < 50; ++v) sum += std::exp(logits[pos * 64 + size_t(v)] - mx);
      want += logits[pos * 64 + size_t(req[i].continuation[k])] - mx - std::log(sum);
    }
    REQUIRE(a[i].logprob == Approx(want).epsilon(1e-10));
  }
}

TEST_CASE("task parsers read the real files", "[eval][tasks]") {
  auto lambada = make_eval_task("lambada")->load(kAssets, 2);
  REQUIRE(lambada.size() == 2);
  REQUIRE(lambada[0].choices.size() == 1);
  REQUIRE(lambada[0].choices[0][0] == ' ');
  REQUIRE(lambada[0].context.back() != ' ');

  auto piqa = make_eval_task("piqa")->load(kAssets, 3);
  REQUIRE(piqa[0].context == "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:");
  REQUIRE(piqa[0].choices[0].rfind(
              " Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper", 0) == 0);
  REQUIRE(piqa[0].gold == 0);  // valid-labels.lst: 0, 1, 1
  REQUIRE(piqa[1].gold == 1);
  REQUIRE(piqa[1].norm_lengths == std::vector<double>{30, 34});  // "replace drawer with bobby pin " etc.

  auto boolq = make_eval_task("boolq")->load(kAssets, 1);
  REQUIRE(boolq[0].context.rfind("Ethanol fuel -- ", 0) == 0);
  REQUIRE(boolq[0].context.find("\nQuestion: does ethanol take more energy make that produces?\nAnswer:") !=
          std::string::npos);
  REQUIRE(boolq[0].gold == 1);  // "false" -> " no"

  auto trivia = make_eval_task("triviaqa")->load(kAssets, 2);
  REQUIRE(trivia[1].context == "Question: What type of animal is a dik-dik?\nAnswer:");
  REQUIRE(trivia[1].choices ==
          std::vector<std::string>{" Antelope", " Antilopina", " Botswanan Antelopes", " Hybrid antelope"});

  auto webqs = make_eval_task("webqs")->load(kAssets, 2);
  REQUIRE(webqs[0].context == "Question: what does jamaican people speak?\nAnswer:");
  REQUIRE(webqs[0].choices == std::vector<std::string>{" Jamaican Creole English Language", " Jamaican English"});
  REQUIRE(webqs[1].choices == std::vector<std::string>{" Lawyer"});

  auto race = make_eval_task("race")->load(kAssets, 0);
  REQUIRE(race.size() == 2);  // two articles
  REQUIRE(race[0].context.find("Article: The village of Elmford") == 0);
  REQUIRE(
      race[0].context.find("\n\nQuestion: Where do the farmers usually plant their wheat?\nAnswer: On the hills\n") !=
      std::string::npos);
  REQUIRE(race[0].context.find("\n _  .stones\n") != std::string::npos);  // lm-eval's "  _  ." quirk, kept
  REQUIRE(race[0].context.substr(race[0].context.size() - 32) == "How did the farmers thank Clara?");
  REQUIRE(race[0].gold == 0);
  REQUIRE(race[1].gold == 3);

  auto wiki = make_eval_task("wikitext")->load(kAssets, 0);
  REQUIRE(wiki.size() == 2);  // "= = History = =" stays inside the first article
  REQUIRE(wiki[0].text.find("built in 1821-1823 by the engineer Clara Hale, and carries a road of 4.5 metres") !=
          std::string::npos);
  REQUIRE(wiki[0].text.find("== History ==") != std::string::npos);
  REQUIRE(wiki[1].text.find("Tom's Notebook is a children's book about birds; it was published in 1990.") !=
          std::string::npos);
}

TEST_CASE("metrics: acc, acc_norm by character length, any-greedy, BoolQ ties", "[eval][tasks]") {
  EvalDoc d;
  d.choices = {" a", " b"};
  d.gold = 1;
  d.norm_lengths = {10, 20};
  // summed: -10 > -12 picks 0 (wrong); per character: -1.0 < -0.6 picks 1 (right)
  TaskMetrics m =
      make_eval_task("piqa")->aggregate({d, d}, {{{-10, false}, {-12, false}}, {{-30, false}, {-12, false}}});
  REQUIRE(m.values["acc"] == Approx(0.5));
  REQUIRE(m.values["acc_norm"] == Approx(1.0));
  REQUIRE(m.stderr_["acc"] == Approx(0.5));  // sample std (0.7071) / sqrt(2)
  TaskMetrics t = make_eval_task("triviaqa")->aggregate({d, d}, {{{-1, false}, {-2, true}}, {{-1, false}}});
  REQUIRE(t.values["acc"] == Approx(0.5));
  EvalDoc yes;
  yes.gold = 0;
  TaskMetrics b =
      make_eval_task("boolq")->aggregate({yes, yes}, {{{-1, false}, {-2, false}}, {{-2, false}, {-2, false}}});
  REQUIRE(b.values["acc"] == Approx(0.5));  // a tie answers "no"
  TaskMetrics l = make_eval_task("lambada")->aggregate({d, d}, {{{-1, true}}, {{-3, false}}});
  REQUIRE(l.values["acc"] == Approx(0.5));
  REQUIRE(l.values["ppl"] == Approx(std::exp(2.0)));
}

TEST_CASE("WikiText detokenizer, rolling windows, alias pruning, WebQuestions answers", "[eval][tasks]") {
  REQUIRE(wikitext_detokenize("x\n = = Early life = = \n") == "x\n== Early life ==\n");  // a line's edge spaces go
  REQUIRE(wikitext_detokenize("in 1821 @-@ 1823 , 2 @,@ 300 and 4 @.@ 5 m") == "in 1821-1823, 2,300 and 4.5 m");
  REQUIRE(wikitext_detokenize("( it burned ) and \" five arches \" ; Tom 's") ==
          "(it burned) and \"five arches\"; Tom's");
  REQUIRE(wikitext_detokenize("the N sign") == "the 1 sign");

  std::vector<int32_t> tokens = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<RollingWindow> w = rolling_windows(tokens, 99, 4);
  REQUIRE(w.size() == 3);
  REQUIRE(w[0].context == std::vector<int32_t>{99});
  REQUIRE(w[0].continuation == std::vector<int32_t>{0, 1, 2, 3});
  REQUIRE(w[1].context == std::vector<int32_t>{3});
  REQUIRE(w[1].continuation == std::vector<int32_t>{4, 5, 6, 7});
  REQUIRE(w[2].context == std::vector<int32_t>{5, 6, 7});
  REQUIRE(w[2].continuation == std::vector<int32_t>{8, 9});

  REQUIRE(prune_aliases({"Onions", "Onion", "Bulb onion", "Onion skins"}) ==
          std::vector<std::string>{"Bulb onion", "Onion"});
  REQUIRE(webqs_answers("(list (description \"Jamaican Creole English Language\") (description Lawyer))") ==
          std::vector<std::string>{"Jamaican Creole English Language", "Lawyer"});
}

TEST_CASE("missing and malformed task files give clear errors", "[eval][errors]") {
  fs::path d = trainfix::fresh_dir("eval_errors");
  fs::create_directories(d / "lambada");
  REQUIRE_THROWS_AS(make_eval_task("piqa")->load(d.string(), 0), MissingTaskData);
  REQUIRE_THROWS_WITH(make_eval_task("piqa")->load(d.string(), 0), Contains("piqa/valid.jsonl") && Contains("PIQA"));
  std::ofstream(d / "lambada" / "lambada_test.jsonl") << "{\"text\": \"a b\"}\n{not json}\n";
  REQUIRE_THROWS_WITH(make_eval_task("lambada")->load(d.string(), 0),
                      Contains("lambada_test.jsonl:2: not a JSON object"));
  std::ofstream(d / "lambada" / "lambada_test.jsonl") << "{\"txt\": \"a b\"}\n";
  REQUIRE_THROWS_WITH(make_eval_task("lambada")->load(d.string(), 0), Contains(":1: missing the text field 'text'"));
  REQUIRE_THROWS_WITH(make_eval_task("lambda"), Contains("did you mean 'lambada'"));
  fs::remove_all(d);
}

TEST_CASE("zero-shot tasks during training go to metrics.jsonl", "[eval][train]") {
  fs::path d = trainfix::fresh_dir("eval_tasks");
  TrainConfig c = trainfix::tiny_run(d);
  c.train_iters = 4;
  c.eval_tasks = {"lambada", "boolq"};
  c.eval_tasks_interval = 2;
  c.eval_tasks_limit = 5;
  c.eval_task_data = kAssets;
  run_training(c, trainfix::quiet_options());
  std::vector<int64_t> at;
  std::istringstream in(trainfix::slurp(d / "metrics.jsonl"));
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (j["split"] != "tasks") continue;
    at.push_back(j["iteration"].get<int64_t>());
    REQUIRE(j.contains("lambada_acc"));
    REQUIRE(j.contains("lambada_ppl"));
    REQUIRE(j["boolq_acc"].get<double>() >= 0.0);
  }
  REQUIRE(at == std::vector<int64_t>{2, 4});
  c.eval_tasks = {"lambda"};
  REQUIRE_THROWS_WITH(validate(c), Contains("did you mean 'lambada'"));
  c.eval_tasks = {"lambada"};
  c.tensor_model_parallel_size = 2;
  REQUIRE_THROWS_WITH(validate(c, 2), Contains("eval_tasks run with tensor_model_parallel_size 1 only"));
  fs::remove_all(d);
}
