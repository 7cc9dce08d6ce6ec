// moetrain: one binary, many subcommands (`moetrain help` lists them).
#include <cstdio>
#include <exception>
#include <string>

#include "parallel/communicator.h"
#include "runtime/error.h"
#include "tools/command.h"

namespace mt::cli {
namespace {

int run_help(const Args&) {
  std::printf(
      "moetrain %s - GPT Mixture-of-Experts training in C++\n\nusage: moetrain <command> [options]\n\ncommands:\n",
      MOETRAIN_VERSION);
  for (const Command& c : commands()) std::printf("  %-11s %s\n", c.name, c.summary);
  std::printf("\n`moetrain <command> --help` describes a command's options.\n");
  return 0;
}

int run_version(const Args&) {
  std::printf("moetrain %s\n", MOETRAIN_VERSION);
  return 0;
}

}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"help", "list the commands", run_help},
      {"version", "print the version", run_version},
      {"train", "train a GPT from a YAML config (Megatron-DeepSpeed key names; --key value overrides)", run_train},
      {"plan", "the memory one rank of a training config needs (weights, AdamW, ZeRO, activations) vs the device",
       run_plan},
      {"generate", "continue a prompt with a trained checkpoint (greedy, temperature, top-k, top-p)", run_generate},
      {"tokenize", "GPT-2 BPE: text on stdin to token ids (--jsonl, --decode)", run_tokenize},
      {"preprocess", "corpus (JSONL or text) to Megatron .bin/.idx, byte-identical to preprocess_data.py",
       run_preprocess},
      {"eval", "zero-shot tasks (LAMBADA, PIQA, BoolQ, RACE, TriviaQA, WebQs, WikiText) over checkpoints", run_eval},
      {"sweep", "YAML experiment sweeps: expand, run (resuming), emit Slurm/list, --collect a table", run_sweep},
      {"report", "an HTML page of a run's curves (loss, lr, grad norm, tokens/s, expert loads), runs overlaid",
       run_report},
      {"gradcheck", "the model of a config in float64: its backward against finite differences, per parameter",
       run_gradcheck},
      {"trace", "one MoE layer's forward and backward intermediates for the first tokens (--json: all)", run_trace},
      {"upcycle", "an MoE checkpoint from a dense one: every expert a copy of its layer's dense MLP (--num-experts N)",
       run_upcycle},
      {"inspect", "a checkpoint's structure, parameter counts (total, active) and expert loads", run_inspect},
      {"bench", "measure kernel speed against the machine's own SGEMM (bench ops)", run_bench},
  };
  return table;
}

}  // namespace mt::cli

int main(int argc, char** argv) {
  using namespace mt::cli;
  std::string name = argc > 1 ? argv[1] : "help";
  if (name == "--help" || name == "-h") name = "help";
  Args args(argv + std::min(argc, 2), argv + argc);
  for (const Command& c : commands()) {
    if (name != c.name) continue;
    try {
      return c.run(args);
    } catch (const mt::Error& e) {
      // The error is the last thing printed: what the command wrote to stdout (buffered when it is
      // a pipe or a job log) goes out first.
      std::fflush(stdout);
      std::fprintf(stderr, "moetrain %s: error: %s\n", c.name, e.what());
      mt::parallel::abort_other_ranks(1);  // under mpirun: end the job rather than leave ranks waiting
      return 1;
    } catch (const std::exception& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "moetrain %s: internal error: %s\n", c.name, e.what());
      mt::parallel::abort_other_ranks(2);
      return 2;
    }
  }
  std::fprintf(stderr, "moetrain: unknown command '%s'; `moetrain help` lists the commands\n", name.c_str());
  return 1;
}
