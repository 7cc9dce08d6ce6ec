// `moetrain generate --load DIR --prompt "..."`: continue a prompt with a trained checkpoint,
// printing the text as it is produced.
#include <cstdio>

#include "data/gpt2_tokenizer.h"
#include "tools/args.h"
#include "tools/command.h"
#include "train/generate.h"

namespace mt::cli {

int run_generate(const Args& args) {
  ArgParser p("generate", {"load", "prompt", "max-new-tokens", "temperature", "top-k", "top-p", "seed"},
              {"greedy", "help", "no-stop-at-eod"});
  p.parse(args);
  if (p.flag("help")) {
    std::printf(
        "usage: moetrain generate --load DIR --prompt TEXT [options]\n\n"
        "  --load DIR            a checkpoint folder, or a save folder (its 'latest' checkpoint)\n"
        "  --prompt TEXT         the text to continue\n"
        "  --max-new-tokens N    tokens to generate (default 100)\n"
        "  --greedy              always the most likely token (same as --temperature 0)\n"
        "  --temperature T       sampling temperature (default 0.8)\n"
        "  --top-k K             sample among the K most likely tokens (default: all)\n"
        "  --top-p P             nucleus sampling: the smallest set with probability >= P (default 1)\n"
        "  --seed S              sampling seed (default 1234)\n"
        "  --no-stop-at-eod      keep going after an end-of-document token\n");
    return 0;
  }
  MT_CHECK(p.has("load"), "--load DIR is required (see `moetrain generate --help`)");
  MT_CHECK(p.has("prompt"), "--prompt TEXT is required (see `moetrain generate --help`)");
  train::LoadedModel m = train::load_model_for_inference(p.get("load"));
  data::Gpt2Tokenizer tok(m.vocab_file, m.merge_file);
  train::SamplingOptions opt;
  opt.max_new_tokens = p.get_int("max-new-tokens", 100);
  opt.temperature = p.flag("greedy") ? 0.0 : std::stod(p.get("temperature", "0.8"));
  opt.top_k = p.get_int("top-k", 0);
  opt.top_p = std::stod(p.get("top-p", "1.0"));
  opt.seed = uint64_t(p.get_int("seed", 1234));
  opt.stop_token = p.flag("no-stop-at-eod") ? -1 : m.eod;
  std::string prompt = p.get("prompt");
  std::vector<int32_t> tokens = tok.encode(prompt);
  MT_CHECK(!tokens.empty(), "--prompt is empty");
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  std::fflush(stdout);
  train::generate(*m.model, m.vocab_size, tokens, opt, [&](int32_t id) {
    if (id == m.eod) return;
    const std::string& bytes = tok.token_bytes(id);
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);  // raw bytes: a character split over tokens still prints
    std::fflush(stdout);
  });
  std::printf("\n");
  return 0;
}

}  // namespace mt::cli
