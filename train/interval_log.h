// What the training log reports every log_interval iterations: the interval log accumulates each
// step's results (losses, KD and MoE terms, fp16 skips, MoE layer loads, time) and renders them as
// the log line (with the MoE layer table) and as the metrics.jsonl record, from the same numbers.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/gpt.h"

namespace mt::train {

// One optimizer step's results (Trainer::train_step), averaged over its micro-batches and ranks.
struct StepResult {
  double lm_loss = 0;                      // the language-model loss
  double aux_loss = 0;                     // the MoE load-balancing loss before moe_loss_coeff (0 without MoE)
  double z_loss = 0;                       // the router z-loss before moe_z_loss_coeff (0 when off)
  double kd_loss = 0;                      // beta T^2 KL(teacher || student); 0 without a teacher
  bool distilled = false;                  // the step trained with the KD term
  double grad_norm = 0;                    // global gradient norm before clipping
  double lr = 0;                           // the learning rate of the step
  bool applied = true;                     // false: fp16 gradients overflowed, the step was skipped
  double seconds = 0;                      // wall time of the step
  std::vector<nn::LayerLoadStats> layers;  // MoE layer loads summed over the step's micro-batches
  int64_t micro_batches = 0;
  int64_t tokens = 0;      // trained by the whole job in this step (a curriculum trains fewer per sample)
  double model_flops = 0;  // the job's model FLOPs of the step (nn::GptModel::train_flops_per_token)
  int64_t seq_length = 0;  // tokens per sample in this step (the curriculum's length, else seq_length)
  // phase times (wall_clock_breakdown): forward and backward of the micro-batches, the gradient
  // reduction over the ranks, the optimizer (norm, clipping, AdamW)
  double forward_backward_s = 0, reduce_s = 0, optimizer_s = 0;
};

// An MoE layer's balance over the assignments of an interval (the global batch's, all k choices,
// before dropping): the coefficient of variation of the experts' loads (std / mean; 0 when
// balanced) and the experts that got no token at all ("dead").
struct LoadBalance {
  double cv = 0;
  int64_t dead = 0;
};
LoadBalance load_balance(const std::vector<int64_t>& counts);

// The run's constants the rendering needs.
struct IntervalContext {
  int64_t iteration = 0, train_iters = 0, consumed_tokens = 0, consumed_samples = 0;
  int64_t batch_size = 0;      // the global batch, samples
  double peak_tflops = 0;      // per device; 0: unknown (no MFU)
  bool timers = false;         // the phase times in the record (wall_clock_breakdown, log_timers_to_tensorboard)
  bool timers_in_log = false;  // ... and in the log line (wall_clock_breakdown)
  bool curriculum = false;     // the curriculum's sequence length
  int64_t devices = 1;         // ranks of the job
  double moe_loss_coeff = 0;
  double moe_z_loss_coeff = 0;  // > 0: the router z-loss is logged
  double loss_scale = 0;        // fp16's scale now; 0: no loss scaling
  double elapsed_s = 0, eta_s = 0, max_rss_mb = 0;
};

class IntervalLog {
 public:
  void add(const StepResult& step);
  int64_t iterations() const { return iterations_; }

  // The log line ("iteration N/M | tokens ... | ETA ...\n") followed by the MoE layer table.
  std::string render_text(const IntervalContext& c) const;
  // The same numbers as one metrics.jsonl record (split "train").
  nlohmann::json render_record(const IntervalContext& c) const;
  void reset() { *this = IntervalLog(); }

 private:
  double tokens_per_second() const { return double(tokens_) / seconds_; }
  double tflops() const { return model_flops_ / seconds_ * 1e-12; }
  double mfu(const IntervalContext& c) const;

  int64_t iterations_ = 0, distilled_ = 0, skipped_ = 0, micro_batches_ = 0, tokens_ = 0, last_seq_length_ = 0;
  double seconds_ = 0, lm_loss_ = 0, aux_loss_ = 0, z_loss_ = 0, kd_loss_ = 0, last_lr_ = 0, last_norm_ = 0;
  double model_flops_ = 0;
  double forward_backward_s_ = 0, reduce_s_ = 0, optimizer_s_ = 0;
  // per MoE layer: expert counts, and sums of dropped fraction, aux loss and router entropy over
  // the interval's micro-batches (averaged when rendered)
  std::map<int64_t, nn::LayerLoadStats> layers_;
};

// "h:mm:ss"
std::string format_duration(double seconds);

}  // namespace mt::train
