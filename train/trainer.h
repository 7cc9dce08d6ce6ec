// `moetrain train`: the training loop. One iteration = global_batch_size samples as micro-batches
// of micro_batch_size with gradient accumulation, global-norm clipping, one AdamW step at the
// scheduled learning rate. Logs every log_interval iterations (stdout, and one JSON object per
// line in the metrics file), evaluates every eval_interval on the validation split, checkpoints
// every save_interval and at the end, and on SIGTERM/SIGINT or after exit_duration_in_mins saves
// and stops. With `load` set, it resumes exactly where the checkpoint left off.
#pragma once

#include <functional>
#include <string>

#include "train/config.h"

namespace mt::train {

struct TrainSummary {
  int64_t iterations = 0;       // the last completed iteration
  double last_loss = 0;         // mean training loss of the last iteration
  double last_valid_loss = -1;  // of the last evaluation (-1: none)
  std::string last_checkpoint;  // folder of the last checkpoint written
  bool interrupted = false;     // stopped by a signal or the time limit
};

struct TrainerOptions {
  bool quiet = false;            // no stdout (tests)
  bool handle_signals = true;    // SIGTERM/SIGINT -> checkpoint and stop
  int64_t stop_after_iters = 0;  // stop (with a checkpoint) after this many iterations of this run; 0 = no
};

TrainSummary run_training(const TrainConfig& cfg, const TrainerOptions& options = {});

}  // namespace mt::train
