// `moetrain generate --load DIR --prompt "..."`: continue a prompt with a trained checkpoint,
// printing the text as it is produced, then why generation stopped (on stderr).
#include "train/generate.h"

#include <cstdio>

#include "data/gpt2_tokenizer.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mt::cli {

int run_generate(const Args& args) {
  ArgParser p("generate",
              {"load", "prompt", "max-new-tokens", "min-new-tokens", "temperature", "top-k", "top-p", "seed"},
              {"greedy", "help", "stop-at-eod", "no-stop-at-eod"});
  p.parse(args);
  if (p.flag("help")) {
    std::printf(
        "usage: moetrain generate --load DIR --prompt TEXT [options]\n\n"
        "Continues TEXT, printing each token as it is produced; then says on stderr why it stopped.\n"
        "By default it writes --max-new-tokens tokens and goes on past an end of document (printed as\n"
        "<|endoftext|>), as llm.c's and nanoGPT's samplers do; --stop-at-eod ends at the first one, as\n"
        "Hugging Face's generate() does at eos_token_id.\n\n"
        "  --load DIR            a checkpoint folder, or a save folder (its 'latest' checkpoint)\n"
        "  --prompt TEXT         the text to continue\n"
        "  --max-new-tokens N    tokens to generate (default 100)\n"
        "  --stop-at-eod         end at the first end-of-document token\n"
        "  --min-new-tokens N    with --stop-at-eod: no end of document among the first N new tokens\n"
        "                        (default 0, as Hugging Face's min_new_tokens)\n"
        "  --no-stop-at-eod      go on past end-of-document tokens (the default)\n"
        "  --greedy              always the most likely token (same as --temperature 0)\n"
        "  --temperature T       sampling temperature (default 0.8)\n"
        "  --top-k K             sample among the K most likely tokens (default: all)\n"
        "  --top-p P             nucleus sampling: the smallest set with probability >= P (default 1)\n"
        "  --seed S              sampling seed (default 1234)\n");
    return 0;
  }
  MT_CHECK(p.has("load"), "--load DIR is required (see `moetrain generate --help`)");
  MT_CHECK(p.has("prompt"), "--prompt TEXT is required (see `moetrain generate --help`)");
  MT_CHECK(p.positional().empty(), "unexpected argument '", p.positional().empty() ? "" : p.positional()[0],
           "' (see `moetrain generate --help`)");
  MT_CHECK(!(p.flag("stop-at-eod") && p.flag("no-stop-at-eod")), "give --stop-at-eod or --no-stop-at-eod, not both");
  MT_CHECK(!p.has("min-new-tokens") || p.flag("stop-at-eod"),
           "--min-new-tokens holds back the end of document that --stop-at-eod stops at; give both, or neither");
  train::SamplingOptions opt;
  opt.max_new_tokens = p.get_int("max-new-tokens", 100);
  opt.min_new_tokens = p.get_int("min-new-tokens", 0);
  opt.temperature = p.flag("greedy") ? 0.0 : p.get_double("temperature", 0.8);
  opt.top_k = p.get_int("top-k", 0);
  opt.top_p = p.get_double("top-p", 1.0);
  opt.seed = uint64_t(p.get_int("seed", 1234));
  train::check_sampling_options(opt);  // before the model is loaded
  std::string prompt = p.get("prompt");
  MT_CHECK(!prompt.empty(), "--prompt is empty");
  train::LoadedModel m = train::load_model_for_inference(p.get("load"));
  data::Gpt2Tokenizer tok(m.vocab_file, m.merge_file);
  opt.stop_token = p.flag("stop-at-eod") ? m.eod : -1;
  std::vector<int32_t> tokens = tok.encode(prompt);
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  std::fflush(stdout);
  train::GenerationEnd end = train::generate(*m.model, m.vocab_size, tokens, opt, [&](int32_t id) {
    if (id == opt.stop_token) return;
    const std::string& bytes = tok.token_bytes(id);
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);  // raw bytes: a character split over tokens still prints
    std::fflush(stdout);
  });
  std::printf("\n");
  std::fflush(stdout);
  if (end.at_stop_token)
    std::fprintf(stderr, "[stopped: end of document after %lld new tokens]\n", (long long)end.new_tokens);
  else
    std::fprintf(stderr, "[stopped: max-new-tokens (%lld) reached]\n", (long long)end.new_tokens);
  return 0;
}

}  // namespace mt::cli
