// The DeepSpeed JSON that Megatron-DeepSpeed's launch scripts pass (--deepspeed_config FILE,
// examples_deepspeed/MoE/ds_config_gpt_TEMPLATE.json and its Zero2 twin), applied to a TrainConfig:
//   train_batch_size, train_micro_batch_size_per_gpu  -> global_batch_size, micro_batch_size (a clear
//                                                        error where the flags say otherwise)
//   gradient_accumulation_steps                        checked against the two above
//   gradient_clipping                                  -> clip_grad
//   fp16 {enabled, loss_scale (0 = dynamic), initial_scale_power, loss_scale_window, hysteresis,
//         min_loss_scale}                              -> precision fp16 and the loss-scaling keys
//   bf16 {enabled}                                     -> precision bf16
//   zero_optimization {stage}                          -> zero_stage
//   prescale_gradients, steps_per_print, wall_clock_breakdown -> the keys of the same names
//   curriculum_learning {enabled, curriculum_type seqlen, min_difficulty, max_difficulty,
//         schedule_type fixed_linear, schedule_config {total_curriculum_step, difficulty_step}}
//                                                      -> the curriculum_* keys
// Any other key is an error naming it (nothing a script sets is silently ignored).
#pragma once

#include "train/config.h"

namespace mt::train {

// Applies cfg.deepspeed_config's file (nothing when it is empty). Idempotent.
void apply_deepspeed_config(TrainConfig& cfg);

}  // namespace mt::train
