// The training configuration: Megatron-DeepSpeed's flag names in snake_case, read from a YAML
// file and overridden by the same names as command-line flags (--lr 2e-4 or --lr=2e-4,
// --data-path 0.3 a 0.7 b). Every key is declared once in config.cpp's table with its type,
// default and help; the table drives parsing, validation messages, printing and saving.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/dtype.h"

namespace mt::train {

struct TrainConfig {
  // --- model
  int64_t num_layers = 12, hidden_size = 768, num_attention_heads = 12, ffn_hidden_size = 0;  // 0: 4 * hidden
  int64_t seq_length = 1024, max_position_embeddings = 0;                                     // 0: seq_length
  double init_method_std = 0.02, hidden_dropout = 0.1, attention_dropout = 0.1, layernorm_epsilon = 1e-5;
  int64_t make_vocab_size_divisible_by = 128, tensor_model_parallel_size = 1;
  // --- batch and length of training
  int64_t micro_batch_size = 0, global_batch_size = 0;  // global 0: micro_batch_size * data-parallel size
  // train_iters, train_tokens or train_samples; train_iters with train_tokens: whichever comes first
  int64_t train_iters = 0, train_tokens = 0;
  double exit_duration_in_mins = 0;         // 0 = no time limit
  int64_t exit_interval = 0;                // save and stop at a multiple of it; 0 = never
  double distributed_timeout_minutes = 10;  // a collective's wait for its peers (parallel/watchdog.h)
  int64_t seed = 1234;
  // --- optimizer and schedule
  double lr = 1e-4, min_lr = 0, weight_decay = 0.01, clip_grad = 1.0;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;
  std::string lr_decay_style = "linear";  // constant | linear | cosine
  int64_t lr_decay_iters = 0, lr_decay_tokens = 0, lr_warmup_iters = 0, lr_warmup_tokens = 0;
  double lr_warmup_fraction = 0;
  // --- data
  std::vector<std::string> data_path;
  std::string split = "969, 30, 1", vocab_file, merge_file;  // empty files: the bundled GPT-2 ones
  bool eod_mask_loss = false;
  std::string data_cache_path;  // where the GPT index arrays are cached; empty = <data dir>/index-cache
  // --- checkpoints, logging, evaluation
  std::string save, load, metrics_file;
  int64_t save_interval = 0, keep_last_n = 0;  // 0 = never / keep all
  // a save folder holding checkpoints later than the run's start: move them into superseded/ and
  // continue the folder from here (train/checkpoint_folder.h); false: refuse with the ways out
  bool supersede_later_checkpoints = false;
  int64_t log_interval = 100, eval_interval = 1000, eval_iters = 100;
  std::vector<std::string> eval_tasks;       // zero-shot tasks run during training (docs/eval.md)
  int64_t eval_tasks_interval = 0;           // iterations between them; 0 = only at the end
  int64_t eval_tasks_limit = 100;            // documents per task; 0 = all
  std::string eval_task_data = "data/eval";  // folder with <task>/<file>
  std::string precision = "fp32";            // fp32 | bf16 | fp16 | auto: the GEMMs' operands (autograd/autocast.h)
  // fp16 loss scaling (Megatron's names): loss_scale > 0 fixes it, else dynamic from initial_loss_scale
  double loss_scale = 0, initial_loss_scale = 4294967296.0, min_loss_scale = 1.0;
  int64_t loss_scale_window = 1000, hysteresis = 2;
  double peak_tflops = 0;      // per device, for the MFU in the log; 0: the GPU's known peak (none on the CPU)
  std::string device = "cpu";  // cpu | cuda (one GPU per rank; the CUDA backend, docs/cuda.md)
  // --- mixture of experts (Megatron-DeepSpeed's flags)
  std::vector<std::string> num_experts = {"1"};  // one count, or one per MoE layer (pyramid); 1 = dense
  int64_t expert_interval = 2;                   // layer l (1-based) is MoE when l % expert_interval == 0
  int64_t topk = 1, moe_min_capacity = 4;
  double moe_train_capacity_factor = 1.0, moe_eval_capacity_factor = 1.0, moe_loss_coeff = 0.1;
  double moe_z_loss_coeff = 0.0;  // ST-MoE's router z-loss weight (Megatron-Core's name); 0 = off
  std::string moe_router_load_balancing_type = "aux_loss";  // aux_loss | seq_aux_loss | global_aux_loss | none
  bool moe_router_enable_expert_bias = false;               // auxiliary-loss-free balancing (DeepSeek-V3)
  double moe_router_bias_update_rate = 1e-3;                // its step: b_e += rate * sign(mean load - load_e)
  bool moe_router_pre_softmax = false;                // combine weights: the raw top-k probabilities (no renormalising)
  double moe_router_topk_scaling_factor = 1.0;        // combine weights times this (DeepSeek-V3: 2.5)
  std::string moe_router_score_function = "softmax";  // softmax | sigmoid (DeepSeek-V3)
  int64_t moe_ffn_hidden_size = 0;                    // an expert's width; 0 = the dense MLP's (fine-grained experts)
  int64_t moe_shared_expert_intermediate_size = 0;    // the shared expert's width (DeepSeek-MoE); 0 = none
  bool moe_router_diagnostics =
      false;  // log the gate gradient by loss term, the LM/balance interference, the drop cost
  int64_t moe_router_drop_cost_samples = 64;  // dropped tokens per MoE layer and micro-batch the drop cost re-runs
  bool moe_use_upcycling = false;     // load is a dense checkpoint: start this MoE model from it (train/upcycle.h)
  int64_t moe_router_num_groups = 0;  // group-limited routing (DeepSeek-V3): expert groups; 0 = off
  int64_t moe_router_group_topk = 0;  // ... and the groups each token may use
  bool disable_moe_token_dropping = false, disable_moe_top2_2nd_expert_sampling = false;
  std::string mlp_type = "standard";       // standard | residual (PR-MoE's residual MoE)
  std::string noisy_gate_policy = "None";  // None | Jitter | RSample (DeepSpeed's MoE argument)
  bool use_rts = true;                     // Random Token Selection over capacity (DeepSpeed's default)
  int64_t moe_expert_parallel_size = 1;    // ranks sharing one copy of each layer's experts (ep)
  // --- activation checkpointing (Megatron's --checkpoint-activations, recompute granularity full):
  // each chunk of checkpoint_num_layers transformer layers keeps only its input and recomputes its
  // activations in the backward; deepspeed_activation_checkpointing is DeepSpeed's switch for the same
  bool checkpoint_activations = false, deepspeed_activation_checkpointing = false;
  int64_t checkpoint_num_layers = 1;
  // --- the rest of Megatron-DeepSpeed's launch-script flags (docs/megatron-deepspeed.md)
  bool fp16 = false, bf16 = false;           // set precision to fp16 / bf16 (Megatron's switches)
  bool deepspeed = false;                    // accepted: moetrain is its own engine
  std::string deepspeed_config;              // the DeepSpeed JSON (train/deepspeed_config.h)
  int64_t pipeline_model_parallel_size = 1;  // 1 only: no pipeline parallelism
  bool no_pipeline_parallel = false;         // accepted (the model is never a pipeline)
  bool create_moe_param_group = false;       // accepted: expert parameters always form their own group
  int64_t num_workers = 2;                   // accepted: samples are read in the training thread
  std::string data_impl = "mmap";            // mmap or infer (Megatron's mmap indexed dataset)
  bool override_opt_param_scheduler = false, use_checkpoint_opt_param_scheduler = false;
  bool no_load_optim = false, no_load_rng = false, finetune = false;
  int64_t train_samples = 0;  // train this many samples (train_iters = train_samples / global batch)
  int64_t zero_stage =
      0;  // ZeRO stage: 0 (each rank holds everything), 1 (AdamW sharded), 2 (+ gradients); docs/zero.md
  int64_t allgather_bucket_size = 500000000;  // ZeRO: elements all-gathered at a time (DeepSpeed's default)
  int64_t reduce_bucket_size = 500000000;     // ZeRO 2: gradient elements reduced at a time (DeepSpeed's default)
  // DeepSpeed JSON settings that are also keys
  bool prescale_gradients = false, wall_clock_breakdown = false;
  int64_t steps_per_print = 10;
  // sequence-length curriculum (DeepSpeed's curriculum_learning, curriculum_type seqlen,
  // schedule_type fixed_linear): step s trains on the first
  //   min(max, floor(min + (max - min) * s / total) rounded down to a multiple of difficulty_step)
  // tokens of each sample
  bool curriculum_learning = false;
  int64_t curriculum_min_difficulty = 0, curriculum_max_difficulty = 0, curriculum_total_step = 0;
  int64_t curriculum_difficulty_step = 8;
  // --- TensorBoard event files (Megatron-DeepSpeed's flags; docs/training.md)
  std::string tensorboard_dir;            // empty: none
  int64_t tensorboard_queue_size = 1000;  // events buffered before a write to the file
  bool log_timers_to_tensorboard = false, log_batch_size_to_tensorboard = false;
  bool log_validation_ppl_to_tensorboard = false, log_optimizer_states_to_tensorboard = false;
  // --- Mixture-of-Students: knowledge distillation from a teacher checkpoint (docs/mos.md)
  bool mos = false, kd = false;  // mos: MoE student and teacher; kd: the same for any models
  std::string load_teacher;      // the teacher's checkpoint (a save folder or a checkpoint folder)
  int64_t num_layers_teacher = 0, hidden_size_teacher = 0, num_attention_heads_teacher = 0;  // 0: the student's
  int64_t ffn_hidden_size_teacher = 0;                        // 0: 4 x the teacher's hidden size
  std::vector<std::string> num_experts_teacher = {"1"};       // as num_experts
  std::string mlp_type_teacher;                               // empty: the student's mlp_type
  double kd_temp = 1.0, kd_beta_ce = 1.0, kd_alpha_ce = 1.0;  // alpha: accepted, unused (as DeepSpeed)
  int64_t kd_stop_step = 0;   // iterations from this one on train without the teacher; 0 = never
  bool kd_loss_mask = false;  // apply the LM loss mask to the KD term too (DeepSpeed: no)
  std::vector<std::string> student_init_from_teacher_layers;  // student layer i <- teacher layer [i]

  int64_t ffn_size() const { return ffn_hidden_size > 0 ? ffn_hidden_size : 4 * hidden_size; }
  // an expert's width (and the residual MLP's): moe_ffn_hidden_size, else the dense MLP's
  int64_t moe_ffn_size() const { return moe_ffn_hidden_size > 0 ? moe_ffn_hidden_size : ffn_size(); }
  bool distills() const { return mos || kd; }
  int64_t max_positions() const { return max_position_embeddings > 0 ? max_position_embeddings : seq_length; }
  // Experts of each layer (0-based), 1 for a dense MLP; throws when num_experts does not fit.
  std::vector<int64_t> experts_per_layer() const;
  bool is_moe() const;
  DType compute_dtype() const;  // F32, BF16 or F16 from `precision` (auto: BF16 where the device has bf16 units)
};

// Reads a YAML file (a mapping of keys to values) on top of `base`. Errors name file:line.
TrainConfig load_config_file(const std::string& path, TrainConfig base = {});
// Applies --key value / --key=value / --list-key v1 v2 ... overrides; returns unused positional
// arguments. Unknown flags are errors that suggest the nearest key.
std::vector<std::string> apply_overrides(TrainConfig& cfg, const std::vector<std::string>& args);
// Contradictions and missing values, and whether the layout fits `ranks` processes (tensor
// parallel size x data-parallel size): throws one clear error.
void validate(const TrainConfig& cfg, int64_t ranks = 1);
// The teacher's configuration for distillation: the student's, with the *_teacher keys applied
// (model shape, experts, mlp_type); everything else (vocabulary, sequence, MoE routing options,
// parallel layout) is shared, as in Megatron-DeepSpeed.
TrainConfig teacher_config(const TrainConfig& student);
// The data-parallel size of `ranks` processes: ranks / tensor_model_parallel_size.
inline int64_t data_parallel_size(const TrainConfig& cfg, int64_t ranks) {
  return ranks / std::max<int64_t>(cfg.tensor_model_parallel_size, 1);
}
// The effective configuration as YAML (every key, in table order), loadable by load_config_file.
std::string to_yaml(const TrainConfig& cfg);
// Names of all keys, and the help line of one.
std::vector<std::string> config_keys();
std::string config_help(const std::string& key);

}  // namespace mt::train
