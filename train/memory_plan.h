// The memory plan of a training configuration (`moetrain plan`, and the check `moetrain train`
// runs at start-up): the bytes one rank needs, computed from the configuration alone (nothing is
// allocated), line by line as the code allocates them, and the total against the device.
//
//   persistent  f32 weights (the master copy), their rounded copy under bf16/fp16 (one flat buffer
//               per group, autograd/parameters.h), f32 gradients, AdamW's m and v (f32), a MoS
//               teacher's f32 weights; ZeRO 1 partitions m and v, ZeRO 2 the gradients too (dense
//               over the data-parallel group, experts over the expert-data-parallel group)
//   activations the peak of one micro-batch above that: the tensors the backward functions keep
//               (per layer, from the ops in nn/, moe/, autograd/ops), the logits and their gradient,
//               a teacher's logits, and the working set at the moment the peak happens
//
// What it predicts is the runtime allocator's high-water mark (runtime/allocator.h), which the
// plan's test compares with a measured step; docs/plan.md has every formula and its limits.
#pragma once

#include <string>
#include <vector>

#include "train/config.h"
#include "train/model_config.h"

namespace mt::train {

// The memory one rank may use.
struct PlanDevice {
  std::string name;           // what the report names: "host RAM", "cuda", "--memory-gb 80"
  double bytes = 0;           // of the whole device
  int64_t ranks_sharing = 1;  // ranks that share it (the CPU: the ranks of the node)
  double reserve_bytes = 0;   // used outside the allocator (a GPU's CUDA context, cuBLAS and NCCL buffers)
  double per_rank() const { return bytes / double(ranks_sharing > 0 ? ranks_sharing : 1); }
};

// The device of a configuration on this machine: host RAM (sysconf) shared by `ranks_on_node`
// ranks for device cpu; the GPU's memory (one GPU per rank) for device cuda; or `memory_gb` (> 0)
// per rank for another machine.
PlanDevice plan_device(const TrainConfig& cfg, int64_t ranks_on_node, double memory_gb = 0);

struct MemoryPlanOptions {
  int64_t ranks = 1;
  int64_t vocab_size = 50257;  // the tokenizer's (padded by the config's make_vocab_size_divisible_by)
  // The CPU's 16-bit GEMMs widen their operands to f32 (fp16 always, bf16 without bf16 matrix
  // units: runtime/cpu/gemm_bf16.h), so rounded operands are held in f32 (ops::rounded_operand_dtype);
  // false on a GPU.
  bool gemm_widens_half = false;
};

// The same for the training run on this machine (ranks of the job; device, precision path).
MemoryPlanOptions plan_options_for(const TrainConfig& cfg, int64_t ranks, int64_t vocab_size);

struct MemoryLine {
  std::string name;
  double bytes = 0;
  std::string note;  // how it was counted
};

struct MemoryPlan {
  // the layout
  int64_t ranks = 1, tp = 1, dp = 1, ep = 1, edp = 1, zero_stage = 0;
  int64_t micro_batch = 1, seq_length = 1, tokens = 1, padded_vocab = 0;
  std::string precision;
  bool checkpointing = false, teacher = false, dropless = false;
  ParameterCounts params, teacher_params;  // this rank's
  int64_t model_params = 0;                // the whole model's

  // persistent: between steps
  double weights = 0, half_weights = 0, gradients = 0, optimizer = 0, teacher_weights = 0, comm_buffers = 0;
  // one micro-batch: the peak above the persistent bytes, and the moment it happens
  double activations = 0;
  std::string peak_moment;
  std::vector<MemoryLine> activation_lines;  // what the peak is made of
  // MoE dispatch rows: the capacity bound (or, dropless, the balanced expectation) the activations
  // use, and the dropless worst case (every token of the expert group to one rank's experts)
  double dropless_worst_extra = 0;
  // model construction (before the first step): the parameters' initial tensors and flat buffers
  double construction_peak = 0;

  double persistent() const { return weights + half_weights + gradients + optimizer + teacher_weights + comm_buffers; }
  // What the allocator's high-water mark should reach: the larger of a step and construction.
  double total() const;
  std::vector<MemoryLine> persistent_lines() const;
};

MemoryPlan plan_memory(const TrainConfig& cfg, const MemoryPlanOptions& options);

// The report: the layout, each line in GB, the total against the device, and when it does not fit
// "does not fit: use ..." with what would help (ZeRO stage, expert parallelism, activation
// checkpointing, a smaller micro-batch), each re-planned.
std::string format_memory_plan(const MemoryPlan& plan, const PlanDevice& device);
bool plan_fits(const MemoryPlan& plan, const PlanDevice& device);
// "does not fit: ... use ..." (empty when it fits): the changes that make it fit, each checked.
std::string does_not_fit_message(const TrainConfig& cfg, const MemoryPlanOptions& options, const PlanDevice& device);

}  // namespace mt::train
