// Inputs a user gets wrong, each refused with one clear message (issue 16 item 7): task files
// whose parallel question and label files differ in count, task data that is a folder, and
// generation options out of range; and how generation ends (stop token, min_new_tokens).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "eval/tasks.h"
#include "test_folders.h"
#include "train/generate.h"
#include "train/model_config.h"

using namespace mt;
using namespace mt::train;
using namespace mt::eval;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {
// A task-data folder holding piqa/valid.jsonl with `questions` lines and piqa/valid-labels.lst
// with `labels` labels.
fs::path piqa_data(const std::string& name, int questions, int labels) {
  fs::path dir = testfolders::fresh_temp_dir("moetrain_piqa_" + name);
  fs::create_directories(dir / "piqa");
  std::ofstream q(dir / "piqa" / "valid.jsonl"), l(dir / "piqa" / "valid-labels.lst");
  for (int i = 0; i < questions; ++i)
    q << R"({"goal": "Open a jar", "sol1": "twist the lid", "sol2": "eat it"})"
      << "\n";
  for (int i = 0; i < labels; ++i) l << i % 2 << "\n";
  return dir;
}
}  // namespace

TEST_CASE("piqa: questions and labels must pair up", "[train][eval][errors]") {
  auto piqa = make_eval_task("piqa");
  REQUIRE(piqa->load(piqa_data("ok", 3, 3).string(), 0).size() == 3);
  for (int64_t limit : {0, 2}) {  // also when only the first documents are read
    REQUIRE_THROWS_WITH(piqa->load(piqa_data("more_labels", 3, 4).string(), limit),
                        Contains("valid.jsonl has 3 questions") && Contains("valid-labels.lst has 4 labels"));
    REQUIRE_THROWS_WITH(piqa->load(piqa_data("fewer_labels", 3, 2).string(), limit),
                        Contains("has 3 questions") && Contains("has 2 labels"));
  }
  fs::path folder = piqa_data("folder", 0, 0);  // a folder where the questions file should be
  fs::remove(folder / "piqa" / "valid.jsonl");
  fs::create_directories(folder / "piqa" / "valid.jsonl");
  REQUIRE_THROWS_WITH(piqa->load(folder.string(), 0), Contains("valid.jsonl': it is a folder"));
}

TEST_CASE("generate: options out of range, the stop token, min_new_tokens", "[train][generate]") {
  SamplingOptions o;
  o.max_new_tokens = -3;
  REQUIRE_THROWS_WITH(check_sampling_options(o), Contains("--max-new-tokens must be 0 or more, got -3"));
  o.max_new_tokens = 5;
  o.min_new_tokens = 6;
  REQUIRE_THROWS_WITH(check_sampling_options(o), Contains("--min-new-tokens"));
  o.min_new_tokens = 0;
  o.top_k = -1;
  REQUIRE_THROWS_WITH(check_sampling_options(o), Contains("--top-k"));
  o.top_k = 0;
  o.top_p = 0;
  REQUIRE_THROWS_WITH(check_sampling_options(o), Contains("--top-p"));

  TrainConfig c;
  c.num_layers = 1;
  c.hidden_size = 16;
  c.num_attention_heads = 2;
  c.seq_length = 16;
  c.hidden_dropout = c.attention_dropout = 0;
  const int64_t vocab = 50;
  std::unique_ptr<nn::GptModel> model = make_model(c, vocab);
  const std::vector<int32_t> prompt = {1, 2, 3};
  SamplingOptions greedy;
  greedy.temperature = 0;
  greedy.max_new_tokens = 4;
  std::vector<int32_t> tokens = prompt;
  GenerationEnd end = generate(*model, vocab, tokens, greedy);
  REQUIRE(end.new_tokens == 4);
  REQUIRE_FALSE(end.at_stop_token);
  REQUIRE(tokens.size() == 7);
  // the greedy first token as the stop token: generation ends with it
  greedy.stop_token = tokens[3];
  tokens = prompt;
  end = generate(*model, vocab, tokens, greedy);
  REQUIRE(end.new_tokens == 1);
  REQUIRE(end.at_stop_token);
  // held back for the first 2 new tokens (sampled as well as greedy)
  for (double temperature : {0.0, 1.0}) {
    SamplingOptions held = greedy;
    held.temperature = temperature;
    held.min_new_tokens = 2;
    tokens = prompt;
    end = generate(*model, vocab, tokens, held);
    REQUIRE(end.new_tokens >= 2);
    REQUIRE(tokens[3] != held.stop_token);
    REQUIRE(tokens[4] != held.stop_token);
  }
}
