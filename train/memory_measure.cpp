#include "train/memory_measure.h"

#include "runtime/allocator.h"
#include "train/trainer.h"

namespace mt::train {

MeasuredMemory measure_training_memory(TrainConfig cfg, parallel::Communicator& world) {
  cfg.global_batch_size = cfg.micro_batch_size * (world.size() / cfg.tensor_model_parallel_size);
  cfg.lr_warmup_iters = cfg.lr_warmup_tokens = 0;  // two steps: the schedule does not matter here
  cfg.lr_warmup_fraction = 0;
  Allocator& memory = allocator_for(cfg.device == "cuda" ? DeviceType::CUDA : DeviceType::CPU);
  size_t before = memory.stats().live_bytes;
  MeasuredMemory m;
  TrainerOptions o;
  o.quiet = true;
  o.handle_signals = false;
  o.synthetic_data = true;
  o.world = &world;
  Trainer trainer(cfg, o);
  trainer.train_step();  // warm-up: caches, the 16-bit weight copy
  m.persistent = double(memory.stats().live_bytes - before);
  memory.reset_peak();
  trainer.train_step();
  m.peak = double(memory.stats().peak_bytes - before);
  return m;
}

}  // namespace mt::train
