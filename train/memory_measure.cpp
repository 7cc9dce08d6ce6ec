#include "train/memory_measure.h"

#include "runtime/allocator.h"
#include "train/trainer.h"

namespace mt::train {

MeasuredMemory measure_training_memory(TrainConfig cfg, parallel::Communicator& world, bool synthetic_data) {
  cfg.global_batch_size = cfg.micro_batch_size * (world.size() / cfg.tensor_model_parallel_size);
  Allocator& memory = allocator_for(cfg.device == "cuda" ? DeviceType::CUDA : DeviceType::CPU);
  size_t before = memory.stats().live_bytes;
  MeasuredMemory m;
  TrainerOptions o;
  o.quiet = true;
  o.handle_signals = false;
  o.synthetic_data = synthetic_data;
  o.world = &world;
  memory.reset_peak();
  Trainer trainer(cfg, o);
  m.construction = double(memory.stats().peak_bytes - before);
  trainer.train_step();  // warm-up: caches, the 16-bit weight copy
  m.persistent = double(memory.stats().live_bytes - before);
  memory.reset_peak();
  trainer.train_step();
  m.peak = double(memory.stats().peak_bytes - before);
  return m;
}

}  // namespace mt::train
