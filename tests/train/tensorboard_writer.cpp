// moetrain_tensorboard_writer RECORDS.jsonl FOLDER [--all-options] [--queue-size N]: writes the
// TensorBoard scalars of metrics.jsonl records (train/tensorboard.h, write_training_scalars) into
// a new event file in FOLDER and prints its path. --all-options turns on every
// --log-*-to-tensorboard group. For tests/cli/tensorboard_reads_scalars.sh, which reads the file
// back with the tensorboard package.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/error.h"
#include "train/tensorboard.h"

int main(int argc, char** argv) try {
  MT_CHECK(argc >= 3, "usage: moetrain_tensorboard_writer RECORDS.jsonl FOLDER [--all-options] [--queue-size N]");
  mt::train::TensorboardOptions options;
  int64_t queue_size = 1000;
  for (int i = 3; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--all-options") {
      options.log_timers = options.log_batch_size = options.log_validation_ppl = options.log_optimizer_states = true;
    } else if (arg == "--queue-size" && i + 1 < argc) {
      queue_size = std::stoll(argv[++i]);
    } else {
      MT_CHECK(false, "unknown argument '", arg, "'");
    }
  }
  std::ifstream in(argv[1]);
  MT_CHECK(in, "cannot read '", argv[1], "'");
  mt::train::TensorboardWriter tb(argv[2], queue_size);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) mt::train::write_training_scalars(tb, nlohmann::json::parse(line), options);
  tb.flush();
  std::printf("%s\n", tb.path().c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "moetrain_tensorboard_writer: error: %s\n", e.what());
  return 1;
}
