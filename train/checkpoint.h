// Checkpoints: <save>/iter_XXXXXXX/ holding
//   model.safetensors      every parameter under its registry name (experts under their global id)
//   optimizer.safetensors  exp_avg.<name>, exp_avg_sq.<name> of AdamW, per parameter
//   config.yaml            the effective training configuration
//   meta.json              format, iteration, consumed samples and tokens, optimizer steps,
//                          and a checksum of each file
// and <save>/latest naming the newest folder. A checkpoint is written into a temporary folder
// and renamed into place (a crash, a kill or a full disk never leaves a half-written one), then
// `latest` is replaced the same way, then retention removes older folders beyond keep_last_n
// (train/checkpoint_folder.h: never the one `latest` names nor anything newer). Loading checks
// the checksums, and every parameter's presence, shape and dtype. docs/checkpoint-format.md.
// Under data / tensor / expert parallelism the files hold the global tensors (every expert, full
// tensor-parallel weights; train/checkpoint_layout.h): saving is collective and rank 0 writes,
// loading takes each rank's part, whatever layout wrote the checkpoint.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "autograd/parameters.h"
#include "train/checkpoint_layout.h"
#include "train/loss_scaler.h"
#include "train/optimizer.h"

namespace mt::train {

struct TrainState {
  int64_t iteration = 0, consumed_samples = 0, consumed_tokens = 0;
  // fp16's dynamic loss scale (train/loss_scaler.h); scale 0: none (fp32, bf16)
  LossScalerState loss_scale{0.0, 0, 0};
  // the LR schedule that trained it (older checkpoints: none saved)
  std::optional<LrScheduleValues> lr_schedule;
  // auxiliary-loss-free balancing: each MoE layer's expert bias [E], by layer (meta.json "expert_bias")
  std::map<int64_t, std::vector<double>> expert_bias;
};

// Returns the folder written (empty on ranks other than the writer). Collective: every rank of a
// parallel job calls it with its layout; the others must wait (barrier) before reading the result.
std::string save_checkpoint(const std::string& save_dir, const TrainState& state, const ParameterRegistry& params,
                            AdamW* optimizer, const std::string& config_yaml, int64_t keep_last_n,
                            const CheckpointLayout& layout = {});

// The checkpoint folder `path` means (train/checkpoint_folder.h, find_checkpoint): `path` itself,
// its `latest`, or its newest complete checkpoint; empty when `path` is a folder with no checkpoint
// yet. Throws for a path that does not exist, and for a folder of something else.
std::string resolve_checkpoint(const std::string& path);

// Loads parameters (and the optimizer state when `optimizer` is given) into place.
// Under a parallel layout each rank takes its experts and tensor-parallel shards.
TrainState load_checkpoint(const std::string& dir, ParameterRegistry& params, AdamW* optimizer,
                           const CheckpointLayout& layout = {});

// The config.yaml saved in a checkpoint folder.
std::string checkpoint_config_path(const std::string& dir);

}  // namespace mt::train
