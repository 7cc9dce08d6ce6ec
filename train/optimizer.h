// AdamW over the parameter registry (Megatron's optimizer: decoupled weight decay on 2-D weights
// only, by the registry's weight_decay tag), global-norm gradient clipping, and Megatron's
// learning-rate schedule.
#pragma once

#include "autograd/parameters.h"
#include "parallel/communicator.h"
#include "train/config.h"
#include "train/held_gradients.h"
#include "train/zero_shard.h"

namespace mt::train {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

// ZeRO stage 1 (zero_stage 1): each group's moments are partitioned over the ranks holding the
// same parameters (train/zero_shard.h: dense over the data-parallel group, experts over the
// expert-data-parallel group); a rank updates its chunk of the weights and all-gathers the rest.
// Stage 2 partitions the same way, and the gradients arrive already reduced into the chunk
// (train/zero_gradients.h). groups[g] nullptr: group g whole on every rank (stage 0).
struct ZeroPartition {
  int stage = 0;
  parallel::Communicator* groups[kNumParamGroups] = {nullptr, nullptr};
  int64_t allgather_bucket = 500000000;  // elements all-gathered at a time
};

class AdamW {
 public:
  // The moments are flat buffers laid out like the registry's (so they checkpoint the same way),
  // or under ZeRO their owned chunk [shard(g).begin, shard(g).end) of that layout.
  AdamW(ParameterRegistry& params, AdamWOptions options, ZeroPartition zero = {});
  // One update of every parameter with its current gradient: the registry's flat buffers, or
  // (ZeRO 2) the held shards, which must cover this rank's chunk.
  void step(double lr, const HeldGradients* held = nullptr);
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }
  int zero_stage() const { return zero_.stage; }
  const FlatShard& shard(ParamGroup g) const { return shards_[int(g)]; }

  enum class Moment { ExpAvg, ExpAvgSq };
  // A moment laid out like the registry's flat buffer of group g, whole: this rank's own buffer
  // at stage 0, gathered from the group's ranks under ZeRO (collective: every rank calls it, in
  // the same order). For checkpoints and the logged optimizer-state norms.
  Tensor full_moment(Moment which, ParamGroup g);
  // Sets a moment from its whole flat layout (this rank keeps its chunk): loading a checkpoint.
  void set_full_moment(Moment which, ParamGroup g, const Tensor& full);

 private:
  Tensor& moment(Moment which, ParamGroup g) { return which == Moment::ExpAvg ? m_[int(g)] : v_[int(g)]; }
  ParameterRegistry& params_;
  AdamWOptions opt_;
  ZeroPartition zero_;
  FlatShard shards_[kNumParamGroups];
  Tensor m_[kNumParamGroups], v_[kNumParamGroups];
  int64_t steps_ = 0;
};

// sqrt of the sum of squares of every gradient (dense and expert groups together).
// With an expert group (expert parallelism) each rank holds only some experts: the experts' sum
// of squares is summed over the group, so every rank gets the norm of the whole model
// (||g||^2 = ||dense||^2 + sum over the expert group of ||local experts||^2, as DeepSpeed).
// With a tensor group, the squares of tensor-parallel shards are summed over it too (replicated
// parameters count once).
double global_grad_norm(const ParameterRegistry& params, parallel::Communicator* expert_group = nullptr,
                        parallel::Communicator* tensor_group = nullptr);
// The same over held gradients: a partitioned group's squares are summed over its partition first.
double global_grad_norm(const ParameterRegistry& params, const HeldGradients& held,
                        parallel::Communicator* expert_group, parallel::Communicator* tensor_group);
// Scales every gradient by max_norm / (norm + 1e-6) when the norm exceeds max_norm (as Megatron);
// max_norm 0 disables clipping. Returns the norm before clipping.
double clip_grad_norm(ParameterRegistry& params, double max_norm, parallel::Communicator* expert_group = nullptr,
                      parallel::Communicator* tensor_group = nullptr);

// The same with the norm already known (global_grad_norm): scales when norm > max_norm.
void clip_grad_norm(const HeldGradients& held, double max_norm, double norm);
// fp16: gradients of the loss times `scale` back to gradients of the loss (every group, / scale).
void unscale_gradients(const HeldGradients& held, double scale);

// Megatron's OptimizerParamScheduler: linear warmup, then constant / linear / cosine decay to
// min_lr, counted in iterations or, with lr_decay_tokens, in tokens. As in Megatron the rate of
// iteration k is the schedule at k - 1 completed iterations (so with warmup the first is 0).
// The values that define a schedule, as a checkpoint keeps them (meta.json "lr_schedule"): on
// resume they are compared with the flags' (Megatron's --override-opt_param-scheduler and
// --use-checkpoint-opt_param-scheduler decide when they differ).
struct LrScheduleValues {
  double max_lr = 0, min_lr = 0, warmup = 0, decay = 0;  // warmup and decay in iterations or tokens
  std::string style;
  bool by_tokens = false;
  bool operator==(const LrScheduleValues&) const = default;
};

class LrSchedule {
 public:
  LrSchedule(const TrainConfig& cfg, int64_t train_iters);
  explicit LrSchedule(const LrScheduleValues& values) : v_(values) {}
  // completed = iterations done before this one; tokens = tokens consumed before it.
  double lr(int64_t completed, int64_t tokens) const;
  const LrScheduleValues& values() const { return v_; }

 private:
  LrScheduleValues v_;
};

// Megatron-DeepSpeed's --log-optimizer-states-to-tensorboard figures over the whole model (every
// rank's part counted once): for "variance" (AdamW's exp_avg_sq), "variance_sqrt" (its square root),
// "momentum" (exp_avg) and "weight" (the parameters), the l2 norm, the l1 norm and the largest
// absolute value. Collective over the expert and tensor groups; a host pass over the state (run
// only when logged).
struct OptimizerStateNorms {
  std::vector<std::string> names;  // e.g. "variance_l2", "weight_abs_max"
  std::vector<double> values;
};
OptimizerStateNorms optimizer_state_norms(const ParameterRegistry& params, AdamW& optimizer,
                                          parallel::Communicator* expert_group, parallel::Communicator* tensor_group);

// The sequence length of step `step` (1-based) under DeepSpeed's sequence-length curriculum
// (curriculum_type seqlen, schedule_type fixed_linear), as its CurriculumScheduler computes it:
//   min(max, d - d % difficulty_step), d = floor(min + (max - min) * step / total_curriculum_step)
// seq_length when the curriculum is off.
int64_t curriculum_seq_length(const TrainConfig& cfg, int64_t step);

// "decay 500 here, 250 in the checkpoint; ...": the values of `a` (the flags') that differ from `b`'s.
std::string schedule_differences(const LrScheduleValues& flags, const LrScheduleValues& checkpoint);

}  // namespace mt::train
