// `moetrain train CONFIG.yaml [--key value ...]`: Megatron-style training from a YAML config,
// every key overridable on the command line with its flag name (--lr 2e-4 --train-iters 100).
#include <cstdio>

#include "parallel/communicator.h"
#include "runtime/error.h"
#include "tools/command.h"
#include "train/config.h"
#include "train/deepspeed_config.h"
#include "train/trainer.h"

namespace mt::cli {

int run_train(const Args& args) {
  for (const std::string& a : args)
    if (a == "--help" || a == "-h") {
      std::printf(
          "usage: moetrain train CONFIG.yaml [--key value ...]\n\n"
          "Trains a GPT model. CONFIG.yaml maps Megatron-DeepSpeed's flag names (snake_case) to values;\n"
          "the same names as flags (--train-iters 100, --data-path 0.3 a 0.7 b) override the file.\n\n"
          "keys:\n");
      for (const std::string& k : train::config_keys())
        std::printf("  %-30s %s\n", k.c_str(), train::config_help(k).c_str());
      return 0;
    }
  MT_CHECK(!args.empty(), "no configuration given; usage: moetrain train CONFIG.yaml [--key value ...] (configs/ ",
           "holds examples such as configs/tiny-dense.yaml; `moetrain train --help` lists every key)");
  train::TrainConfig cfg;
  std::vector<std::string> rest;
  if (args[0].rfind("--", 0) != 0) {
    cfg = train::load_config_file(args[0]);
    rest.assign(args.begin() + 1, args.end());
  } else {
    rest = args;
  }
  std::vector<std::string> positional = train::apply_overrides(cfg, rest);
  MT_CHECK(positional.empty(), "unexpected argument '", positional.empty() ? "" : positional[0],
           "' (usage: moetrain train CONFIG.yaml [--key value ...])");
  train::apply_deepspeed_config(cfg);  // --deepspeed_config FILE: the JSON's settings, checked against the flags
  parallel::Communicator& world = parallel::world();
  train::validate(cfg, world.size());  // a configuration error is the last line, not above ~90 lines of keys
  bool lead = world.rank() == 0;       // under mpirun, rank 0 speaks for all
  if (lead) std::printf("effective configuration:\n%s\n", train::to_yaml(cfg).c_str());
  train::TrainSummary s = train::run_training(cfg);
  if (s.interrupted && lead)
    std::printf("stopped early at iteration %lld; resume with --load %s\n", (long long)s.iterations,
                cfg.save.empty() ? "<save>" : cfg.save.c_str());
  return 0;
}

}  // namespace mt::cli
