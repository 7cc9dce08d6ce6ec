// The plan against measurement (`moetrain plan --measure`): the job's own trainer on random
// tokens, one warm-up step and one measured step, the runtime allocator's bytes on every rank.
#pragma once

#include "parallel/communicator.h"
#include "train/config.h"

namespace mt::train {

struct MeasuredMemory {
  double construction = 0;  // the high-water mark while the trainer was built, above what was live before
  double persistent = 0;    // live between steps (after the warm-up step), above the same
  double peak = 0;          // the high-water mark of the measured step, above the same
};

// This rank's bytes, on its device's allocator (host or GPU). Collective over `world`: every rank
// of the job builds and steps its part of the model (global batch = micro-batch x data-parallel).
// synthetic_data false: the config's data (and a MoS teacher) are read as `moetrain train` does.
MeasuredMemory measure_training_memory(TrainConfig cfg, parallel::Communicator& world, bool synthetic_data = true);

}  // namespace mt::train
