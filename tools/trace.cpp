// `moetrain trace CONFIG.yaml --layer L [--tokens N] [--text "..."] [--json] [--key value ...]`:
// one MoE layer's forward and backward intermediates (toolkit/trace.h).
#include "toolkit/trace.h"

#include <cstdio>

#include "tools/args.h"
#include "tools/command.h"
#include "train/config.h"

namespace mt::cli {

int run_trace(const Args& args) {
  ArgParser p("trace", {"layer", "tokens", "text", "seed"}, {"help", "json", "eval"});
  p.pass_unknown_flags();
  p.parse(args);
  if (p.flag("help") || p.positional().size() != 1 || !p.has("layer")) {
    std::printf(
        "usage: moetrain trace CONFIG.yaml --layer L [--tokens N] [--text \"...\"] [--json] [--key value ...]\n\n"
        "Runs one micro-batch (the GPT-2 tokens of --text, else one sequence of random tokens) through the\n"
        "model of CONFIG.yaml - with a checkpoint's weights when --load DIR is given - forward and backward\n"
        "of the training loss, and prints every intermediate of MoE layer L (1-based, as in the training\n"
        "log): gate logits, probabilities, top-k choices, capacity, kept and dropped tokens, slots, combine\n"
        "weights, expert inputs and outputs; then the backward's d combine weights, dP (via the combine\n"
        "weights and via l_aux), d gate logits, d expert rows and the layer's weight gradients.\n\n"
        "  --layer L     the MoE layer (required)\n"
        "  --tokens N    tokens shown (4)\n"
        "  --text T      the micro-batch's text (default: random tokens, --seed S)\n"
        "  --eval        evaluation mode (eval capacity factor, no gate noise or dropout)\n"
        "  --json        every tensor in full, as one JSON object\n"
        "  --key value   training keys override the config (--load runs/tiny-pr-moe, --topk 2)\n\n"
        "The formulas behind each line: docs/math/moe.md.\n");
    return p.flag("help") ? 0 : 1;
  }
  train::TrainConfig cfg = train::load_config_file(p.positional()[0]);
  std::vector<std::string> extra = train::apply_overrides(cfg, p.rest());
  MT_CHECK(extra.empty(), "unexpected argument '", extra.empty() ? "" : extra[0], "'");
  toolkit::TraceOptions o;
  o.layer = p.get_int("layer", 0);
  o.tokens = p.get_int("tokens", o.tokens);
  o.text = p.get("text");
  o.seed = uint64_t(p.get_int("seed", int64_t(o.seed)));
  o.training = !p.flag("eval");
  o.json = p.flag("json");
  std::printf("%s", toolkit::trace_moe_layer(cfg, o).c_str());
  return 0;
}

}  // namespace mt::cli
