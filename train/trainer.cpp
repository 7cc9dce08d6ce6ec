// The Trainer's construction and its loop; one step, evaluation and the zero-shot tasks are in
// train/trainer_step.cpp.
#include "train/trainer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "runtime/cpu/attention_tile_gemm.h"
#include "runtime/cpu/gemm_bf16.h"
#include "runtime/device.h"
#include "runtime/random.h"
#include "runtime/text_util.h"
#include "train/checkpoint_folder.h"
#include "train/deepspeed_config.h"
#include "train/distillation.h"
#include "train/memory_plan.h"
#include "train/metrics_file.h"
#include "train/model_config.h"
#include "train/stop_signals.h"
#include "train/tensorboard.h"
#include "train/upcycle.h"

namespace mt::train {
namespace {

// The peak resident memory of this process so far, in MB (Linux reports ru_maxrss in KiB).
double peak_memory_mb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Whether two paths name the same folder (either may not exist yet).
bool same_folder(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  std::error_code ec;
  return std::filesystem::weakly_canonical(std::filesystem::absolute(a), ec) ==
         std::filesystem::weakly_canonical(std::filesystem::absolute(b), ec);
}

// The memory plan of this rank (train/memory_plan.h) against its device: refuse early and clearly
// rather than be killed by the out-of-memory handler halfway through.
void check_memory_plan(const TrainConfig& cfg, int64_t ranks, int64_t vocab_size) {
  MemoryPlanOptions options = plan_options_for(cfg, ranks, vocab_size);
  PlanDevice device = plan_device(cfg, local_size_from_launcher(int(ranks)));
  std::string refusal = does_not_fit_message(cfg, options, device);
  MT_CHECK(refusal.empty(), refusal);
}

// The configuration with its DeepSpeed JSON applied (train/deepspeed_config.h).
TrainConfig with_deepspeed_config(TrainConfig cfg) {
  apply_deepspeed_config(cfg);
  return cfg;
}

// How this run's GEMMs compute, for the log: SGEMM, the CPU's bf16 path (its matrix units or
// widened operands, runtime/cpu/gemm_bf16.h; and the attention's, attention_tile_gemm.h) or the
// GPU's cuBLAS.
std::string precision_path(const TrainConfig& cfg, DType compute) {
  if (cfg.device == "cuda")
    return compute == DType::F32 ? "f32 GEMMs (cuBLAS)" : "16-bit GEMM operands on the tensor cores, f32 accumulation";
  if (compute == DType::F32) return "f32 GEMMs (SGEMM)";
  if (compute == DType::BF16)
    return "bf16 GEMM operands, f32 accumulation: " + cpu::bf16_gemm_description() + "; attention on " +
           cpu::attn::bf16_path_units(cpu::attn::bf16_path());
  return "f16 GEMM operands widened to f32 for SGEMM";
}

}  // namespace

void Trainer::clear_progress_bar() const {
  if (tty_) say("\r\033[K");
}

Trainer::Trainer(const TrainConfig& cfg, const TrainerOptions& options)
    : cfg_(with_deepspeed_config(cfg)),
      options_(options),
      // Tensor, data and expert parallel groups over the processes mpirun started (one process:
      // world size 1); train/parallel_setup.h.
      world_(options.world ? *options.world : parallel::world()),
      setup_(make_parallel_setup(cfg_, world_)),
      lead_(world_.rank() == 0),
      // The live progress bar only in a terminal of a single process (mpirun gives ranks a pseudo-
      // terminal even when the job's output goes to a file).
      tty_(!options.quiet && lead_ && world_.size() == 1 && isatty(fileno(stdout))),
      checkpoint_parts_(checkpoint_layout(setup_.layout, setup_.groups, world_.rank())),
      tokenizer_(config_tokenizer(cfg_)),  // the vocabulary size and EOD
      compute_(cfg_.compute_dtype()) {
  // --- model and optimizer
  n_params_ = count_parameters(cfg_, tokenizer_.vocab_size());
  check_memory_plan(cfg_, world_.size(), tokenizer_.vocab_size());
  model_config_ = model_config(cfg_, tokenizer_.vocab_size());
  model_ = make_model(cfg_, tokenizer_.vocab_size(), setup_.expert_group, setup_.tensor_group);
  // ZeRO 1: dense moments partitioned over the data-parallel group, experts' over their replicas
  ZeroPartition zero{int(cfg_.zero_stage),
                     {setup_.groups.data_parallel.get(), setup_.groups.expert_data_parallel.get()},
                     cfg_.allgather_bucket_size};
  optimizer_ = std::make_unique<AdamW>(
      model_->parameters(), AdamWOptions{cfg_.adam_beta1, cfg_.adam_beta2, cfg_.adam_eps, cfg_.weight_decay}, zero);
  if (cfg_.zero_stage >= 2) {  // ZeRO 2: and the gradients, reduced into the same chunks during the backward
    const FlatShard shards[kNumParamGroups] = {optimizer_->shard(ParamGroup::Dense),
                                               optimizer_->shard(ParamGroup::Expert)};
    zero_reducer_ = std::make_unique<ZeroGradientReducer>(model_->parameters(), shards, model_->parameter_layers(),
                                                          cfg_.reduce_bucket_size, setup_.data_parallel);
  }
  global_batch_ = cfg_.global_batch_size > 0 ? cfg_.global_batch_size : cfg_.micro_batch_size;
  accumulation_ = global_batch_ / (cfg_.micro_batch_size * setup_.data_parallel);
  tokens_per_iter_ = global_batch_ * cfg_.seq_length;
  // How long: train_iters; train_samples / global batch (Megatron floors); or train_tokens. With
  // train_iters and train_tokens both (the launch scripts pass both), whichever is reached first.
  train_iters_ = cfg_.train_samples > 0 ? cfg_.train_samples / global_batch_
                 : cfg_.train_iters > 0 ? cfg_.train_iters
                                        : (cfg_.train_tokens + tokens_per_iter_ - 1) / tokens_per_iter_;
  MT_CHECK(train_iters_ > 0, "train_samples (", cfg_.train_samples, ") is smaller than one global batch (",
           global_batch_, " samples): nothing to train");
  train_tokens_ = cfg_.train_tokens;
  schedule_ = std::make_unique<LrSchedule>(cfg_, train_iters_);
  // Mixed precision: fp16 also scales the loss (train/loss_scaler.h).
  if (compute_ == DType::F16)
    scaler_.emplace(LossScalerConfig{cfg_.loss_scale, cfg_.initial_loss_scale, cfg_.min_loss_scale,
                                     cfg_.loss_scale_window, cfg_.hysteresis});
  flops_per_token_ = model_->train_flops_per_token(cfg_.seq_length);  // at the full sequence length
  // MFU: the job's model FLOP/s over the peak of all its devices (when the device's peak is known)
  peak_tflops_ = cfg_.peak_tflops > 0 ? cfg_.peak_tflops : device_peak_tflops(model_config_.device, compute_);

  if (options_.synthetic_data) {  // bench train: random tokens, nothing read or written
    build_data();
    return;
  }
  resume();
  if (complete()) return;  // run() says so
  prepare_save_folder();
  load_teacher();
  build_data();
  metrics_ = std::make_unique<MetricsFile>(lead_ ? metrics_path_ : "");
  if (lead_ && !cfg_.tensorboard_dir.empty())
    tensorboard_ = std::make_unique<TensorboardWriter>(cfg_.tensorboard_dir, cfg_.tensorboard_queue_size);
  config_yaml_ = to_yaml(cfg_);

  // The model's parameters in all, and (under tensor or expert parallelism) this rank's share.
  int64_t rank_params = model_->parameters().numel();
  std::string share;
  if (rank_params != n_params_) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " (%.2fM on each rank)", double(rank_params) / 1e6);
    share = buf;
  }
  say("moetrain train: %lld layers, hidden %lld, %lld heads, seq %lld, vocab %lld (padded), %.2fM parameters%s\n",
      (long long)cfg_.num_layers, (long long)cfg_.hidden_size, (long long)cfg_.num_attention_heads,
      (long long)cfg_.seq_length, (long long)model_config_.padded_vocab_size, double(n_params_) / 1e6, share.c_str());
  if (cfg_.zero_stage > 0) {
    const FlatShard &dense = optimizer_->shard(ParamGroup::Dense), &experts = optimizer_->shard(ParamGroup::Expert);
    say("ZeRO stage %lld: AdamW's moments%s partitioned: dense over %d data-parallel ranks (%.2fM of %.2fM on rank "
        "0), experts over %d replicas\n",
        (long long)cfg_.zero_stage, zero_reducer_ ? " and the gradients" : "", dense.group ? dense.group->size() : 1,
        double(dense.owned()) / 1e6, double(dense.length) / 1e6, experts.group ? experts.group->size() : 1);
    if (zero_reducer_)
      say("ZeRO stage 2: gradients reduced during the backward in %zu buckets of up to %lld elements "
          "(reduce_bucket_size %lld)\n",
          zero_reducer_->buckets(), (long long)zero_reducer_->largest_bucket(), (long long)cfg_.reduce_bucket_size);
  }
  say("precision %s%s: %s\n", cfg_.precision.c_str(),
      cfg_.precision == "auto" ? (std::string(" -> ") + dtype_name(compute_)).c_str() : "",
      precision_path(cfg_, compute_).c_str());
  say("%lld iterations of %lld samples (%lld micro-batches of %lld), %lld tokens each\n", (long long)train_iters_,
      (long long)global_batch_, (long long)accumulation_, (long long)cfg_.micro_batch_size,
      (long long)tokens_per_iter_);
}

Trainer::~Trainer() = default;

// Which checkpoint --load means (train/checkpoint_folder.h): a checkpoint folder, a save folder's
// latest or newest; an empty folder, or an absent one that is also --save, starts fresh.
void Trainer::resume() {
  CheckpointLookup lookup;
  try {
    lookup = find_checkpoint(cfg_.load, !cfg_.load.empty() && same_folder(cfg_.load, cfg_.save));
  } catch (const Error& e) {
    throw Error(std::string("load: ") + e.what());
  }
  resume_from_ = lookup.checkpoint;
  if (!lookup.note.empty()) say("%s\n", lookup.note.c_str());
  if (resume_from_.empty()) return;
  if (cfg_.moe_use_upcycling && !load_config_file(checkpoint_config_path(resume_from_)).is_moe()) {
    check_upcycling_config(cfg_);  // sparse upcycling: this MoE model from the dense checkpoint
    UpcycleCounts n = upcycle_from_dense(resume_from_, model_->parameters(), checkpoint_parts_);
    say("upcycled the dense checkpoint %s: %lld tensors copied (every expert a copy of its layer's dense MLP), "
        "%lld initialised (the gates); iteration 0, AdamW afresh, the data from its start\n",
        resume_from_.c_str(), (long long)n.copied, (long long)n.initialised);
    resume_from_.clear();  // a new run
    return;
  }
  // finetune: the weights only (Megatron: iteration 0, no optimizer, the data from its start);
  // no_load_optim: the weights and counters, AdamW afresh. A checkpoint at iteration 0 without
  // optimizer state (`moetrain upcycle` writes one) gives its weights, AdamW afresh.
  bool optimizer_saved = std::filesystem::exists(std::filesystem::path(resume_from_) / "optimizer.safetensors");
  bool with_optimizer = !cfg_.finetune && !cfg_.no_load_optim && optimizer_saved;
  state_ = load_checkpoint(resume_from_, model_->parameters(), with_optimizer ? optimizer_.get() : nullptr,
                           checkpoint_parts_);
  // auxiliary-loss-free balancing's state (finetune: at 0, with the rest of the training state)
  if (!cfg_.finetune)
    for (const auto& [layer, bias] : model_->expert_biases()) {
      auto saved = state_.expert_bias.find(layer);
      if (saved != state_.expert_bias.end() && saved->second.size() == bias->size())
        *bias = saved->second;
      else
        say("layer %lld: the checkpoint has no expert bias for its %zu experts: it starts at 0\n", (long long)layer + 1,
            bias->size());
    }
  if (cfg_.finetune) {
    state_ = TrainState{};
    say("finetune: the weights of %s; iteration 0, AdamW afresh, the data from its start\n", resume_from_.c_str());
    resume_from_.clear();  // a new run: the save folder's rules see a fresh start
    return;
  }
  MT_CHECK(optimizer_saved || state_.iteration == 0 || cfg_.no_load_optim, "checkpoint '", resume_from_,
           "' has no optimizer state (optimizer.safetensors) at iteration ", state_.iteration,
           ": pass --no-load-optim to resume with AdamW afresh, or --finetune to start over from its weights");
  say("resumed from %s at iteration %lld (%lld samples consumed)%s\n", resume_from_.c_str(),
      (long long)state_.iteration, (long long)state_.consumed_samples,
      with_optimizer       ? ""
      : cfg_.no_load_optim ? "; AdamW afresh (no_load_optim)"
                           : "; AdamW afresh (the checkpoint has none: an upcycled model?)");
  // fp16's dynamic scale resumes where it was; a constant loss_scale, or bf16/fp32, starts clean
  if (scaler_ && cfg_.loss_scale == 0 && state_.loss_scale.scale > 0) scaler_->set_state(state_.loss_scale);
  if (!scaler_) state_.loss_scale = LossScalerState{0.0, 0, 0};
  check_schedule_against_checkpoint();
  saved_at_ = state_.iteration;  // nothing new to save until a step is taken
}

// As Megatron's OptimizerParamScheduler on resume: where the flags' LR schedule differs from the
// checkpoint's, --override-opt_param-scheduler takes the flags', --use-checkpoint-opt_param-scheduler
// the checkpoint's, and without either it is an error naming the differences.
void Trainer::check_schedule_against_checkpoint() {
  if (!state_.lr_schedule || *state_.lr_schedule == schedule_->values()) return;
  std::string differences = schedule_differences(schedule_->values(), *state_.lr_schedule);
  if (cfg_.override_opt_param_scheduler) {
    say("the LR schedule differs from the checkpoint's (%s): taking this run's (override_opt_param_scheduler)\n",
        differences.c_str());
    return;
  }
  if (cfg_.use_checkpoint_opt_param_scheduler) {
    say("the LR schedule differs from the checkpoint's (%s): keeping the checkpoint's "
        "(use_checkpoint_opt_param_scheduler)\n",
        differences.c_str());
    schedule_ = std::make_unique<LrSchedule>(*state_.lr_schedule);
    return;
  }
  throw Error("the learning-rate schedule differs from the checkpoint's (" + differences + "; e.g. a new " +
              "train_iters when lr_decay_iters is not set): pass --override-opt_param-scheduler to train on with " +
              "this run's schedule, or --use-checkpoint-opt_param-scheduler to keep the checkpoint's (as Megatron)");
}

// Stale temporaries removed, no checkpoints of another history written over, metrics.jsonl holding
// one history (rows after this run's start move to metrics-superseded.jsonl). Rank 0 works on the
// shared folder; the others wait.
void Trainer::prepare_save_folder() {
  metrics_path_ = !cfg_.metrics_file.empty() ? cfg_.metrics_file
                  : !cfg_.save.empty()       ? (std::filesystem::path(cfg_.save) / "metrics.jsonl").string()
                                             : "";
  if (lead_) {
    if (!cfg_.save.empty()) {
      std::vector<std::string> removed = remove_stale_temporaries(cfg_.save);
      if (!removed.empty())
        say("removed %zu stale temporaries of interrupted checkpoint writes in %s: %s\n", removed.size(),
            cfg_.save.c_str(), join(removed).c_str());
      for (const std::string& line :
           claim_save_folder(cfg_.save, state_.iteration, resume_from_, cfg_.supersede_later_checkpoints))
        say("%s\n", line.c_str());
    }
    if (int64_t moved = supersede_metrics_rows(metrics_path_, state_.iteration))
      say("%s: %lld rows logged after iteration %lld by an earlier run moved to its -superseded.jsonl "
          "(the file holds this run's history)\n",
          metrics_path_.c_str(), (long long)moved, (long long)state_.iteration);
  }
  world_.barrier();
}

// Distillation (MoS / KD): the frozen teacher, while the KD term is on; also the source of the
// student's initial layers (student_init_from_teacher_layers) on a fresh start.
void Trainer::load_teacher() {
  bool init_from_teacher = resume_from_.empty() && !cfg_.student_init_from_teacher_layers.empty();
  if (!kd_active(cfg_, state_.iteration + 1) && !(cfg_.distills() && init_from_teacher)) return;
  teacher_ = std::make_unique<Teacher>(cfg_, tokenizer_.vocab_size(), setup_, world_.rank());
  say("teacher: %s (%.2fM parameters, frozen, evaluation mode); KD at temperature %g, beta %g, %s%s\n",
      teacher_->checkpoint().c_str(), double(teacher_->model().parameters().numel()) / 1e6, cfg_.kd_temp,
      cfg_.kd_beta_ce, cfg_.kd_loss_mask ? "loss-masked" : "every position",
      cfg_.kd_stop_step > 0 ? (", until iteration " + std::to_string(cfg_.kd_stop_step)).c_str() : "");
  if (init_from_teacher) {
    init_student_from_teacher(model_->parameters(), teacher_->model().parameters(),
                              cfg_.student_init_from_teacher_layers);
    say("student initialised from teacher layers [%s]\n", join(cfg_.student_init_from_teacher_layers).c_str());
  }
  if (!kd_active(cfg_, state_.iteration + 1)) teacher_.reset();
}

// As many samples as Megatron builds for this run; each data-parallel rank reads its slice.
void Trainer::build_data() {
  loader_options_.micro_batch = cfg_.micro_batch_size;
  loader_options_.dp_size = setup_.data_parallel;
  loader_options_.dp_rank = setup_.data_parallel_rank();
  loader_options_.consumed_samples = state_.consumed_samples;
  loader_options_.eod_mask_loss = cfg_.eod_mask_loss;
  loader_options_.eod = tokenizer_.eod();
  loader_options_.vocab_size = tokenizer_.vocab_size();
  if (options_.synthetic_data) return;
  int64_t evals = train_iters_ / cfg_.eval_interval + 1;
  std::array<int64_t, 3> samples = {train_iters_ * global_batch_, evals * cfg_.eval_iters * global_batch_,
                                    cfg_.eval_iters * global_batch_};
  datasets_ = data::build_train_valid_test(data::parse_data_path(cfg_.data_path), cfg_.split, samples, cfg_.seq_length,
                                           uint32_t(cfg_.seed), true, cfg_.data_cache_path);
  MT_CHECK(datasets_[0], "data_path ", cfg_.data_path[0], ": the train split of '", cfg_.split, "' is empty");
  if (!datasets_[1])
    say("validation is off: split '%s' has no validation part (eval_interval %lld does nothing; give the split a "
        "second part, e.g. 949,50,1, to evaluate)\n",
        cfg_.split.c_str(), (long long)cfg_.eval_interval);
  loader_ = std::make_unique<data::GptLoader>(datasets_[0], loader_options_);
  evals_done_ = state_.iteration / cfg_.eval_interval;
}

// The next micro-batch of this rank: the loader's, or (synthetic_data) random tokens drawn from
// the seed, the consumed samples and the data-parallel rank.
data::MicroBatch Trainer::next_micro_batch() {
  if (loader_) return loader_->next();
  data::MicroBatch mb;
  const data::LoaderOptions& o = loader_options_;
  mb.first_sample = o.consumed_samples + o.dp_rank * o.micro_batch;
  mb.tokens = rand_uniform({o.micro_batch, cfg_.seq_length + 1}, DType::F64,
                           rng_key(uint64_t(cfg_.seed), uint64_t(mb.first_sample), 0, 0), 0, double(o.vocab_size))
                  .to(DType::I32);
  mb.loss_mask = Tensor::full({o.micro_batch, cfg_.seq_length}, 1.0, DType::F32);
  loader_options_.consumed_samples += o.micro_batch * o.dp_size;
  return mb;
}

// Staged KD: the LM loss only from kd_stop_step on; the teacher's memory is freed.
void Trainer::finish_distillation_if_due() {
  if (!teacher_ || kd_active(cfg_, state_.iteration + 1)) return;
  teacher_.reset();
  clear_progress_bar();
  say("iteration %lld: distillation stops (kd_stop_step %lld): from iteration %lld on the student trains on "
      "its own loss; the teacher's memory is freed\n",
      (long long)state_.iteration, (long long)cfg_.kd_stop_step, (long long)state_.iteration + 1);
  record({{"iteration", state_.iteration}, {"event", "kd_stopped"}, {"kd_stop_step", cfg_.kd_stop_step}});
}

void Trainer::log_interval() {
  double elapsed = now_seconds() - start_seconds_;
  double per_iter = elapsed / double(state_.iteration - start_iteration_);
  IntervalContext c;
  c.iteration = state_.iteration;
  c.train_iters = train_iters_;
  c.consumed_tokens = state_.consumed_tokens;
  c.consumed_samples = state_.consumed_samples;
  c.batch_size = global_batch_;
  c.timers = cfg_.wall_clock_breakdown || cfg_.log_timers_to_tensorboard;
  c.timers_in_log = cfg_.wall_clock_breakdown;
  c.curriculum = cfg_.curriculum_learning;
  c.peak_tflops = peak_tflops_;
  c.devices = world_.size();
  c.moe_loss_coeff = cfg_.moe_loss_coeff;
  c.moe_z_loss_coeff = cfg_.moe_z_loss_coeff;
  c.loss_scale = scaler_ ? scaler_->scale() : 0.0;
  c.elapsed_s = elapsed;
  // the iterations left: to train_iters, or (train_tokens) at this iteration's tokens, if fewer
  double left = double(train_iters_ - state_.iteration);
  if (train_tokens_ > 0 && last_step_tokens_ > 0)
    left = std::min(left, std::ceil(double(train_tokens_ - state_.consumed_tokens) / double(last_step_tokens_)));
  c.eta_s = per_iter * std::max(left, 0.0);
  c.max_rss_mb = peak_memory_mb();
  clear_progress_bar();
  say("%s", interval_.render_text(c).c_str());
  nlohmann::json line = interval_.render_record(c);
  if (cfg_.log_optimizer_states_to_tensorboard) {  // collective: every rank computes its part
    OptimizerStateNorms norms =
        optimizer_state_norms(model_->parameters(), *optimizer_, setup_.expert_group, setup_.tensor_group);
    for (size_t i = 0; i < norms.names.size(); ++i) line["optimizer"][norms.names[i]] = norms.values[i];
  }
  record(line);
  interval_.reset();
}

// One record of the run (a log interval, a validation, zero-shot tasks, an event): metrics.jsonl,
// and the TensorBoard scalars Megatron-DeepSpeed writes for it (train/tensorboard.h).
void Trainer::record(const nlohmann::json& line) {
  metrics_->write(line);
  if (tensorboard_) write_training_scalars(*tensorboard_, line, tensorboard_options(cfg_));
}

// Collective: rank 0 gathers the experts and shards and writes, the others wait.
void Trainer::save() {
  if (cfg_.save.empty() || saved_at_ == state_.iteration) return;
  state_.lr_schedule = schedule_->values();
  state_.expert_bias.clear();
  for (const auto& [layer, bias] : model_->expert_biases()) state_.expert_bias[layer] = *bias;
  std::string dir = save_checkpoint(cfg_.save, state_, model_->parameters(), optimizer_.get(), config_yaml_,
                                    cfg_.keep_last_n, checkpoint_parts_);
  if (lead_) summary_.last_checkpoint = dir;
  world_.barrier();
  saved_at_ = state_.iteration;
  say("saved checkpoint %s\n", summary_.last_checkpoint.c_str());
}

StopDecision Trainer::stop_decision() {
  StopDecision d;
  d.time_up = cfg_.exit_duration_in_mins > 0 && (now_seconds() - start_seconds_) / 60.0 >= cfg_.exit_duration_in_mins;
  d.exit_interval = cfg_.exit_interval > 0 && state_.iteration % cfg_.exit_interval == 0 && !complete();
  if (world_.size() > 1) {  // stop together: a signal or the clock seen by any rank stops every rank here
    Tensor flags = Tensor::from_vector(std::vector<double>{double(stop_signal()), d.time_up ? 1.0 : 0.0}, {2});
    world_.all_reduce(flags, parallel::ReduceKind::Max);
    if (flags.data<double>()[0] > 0) set_stop_signal(int(flags.data<double>()[0]));
    d.time_up = flags.data<double>()[1] > 0;
  }
  d.signal = stop_signal();
  bool enough = options_.stop_after_iters > 0 && state_.iteration - start_iteration_ >= options_.stop_after_iters;
  d.stop = d.signal || d.time_up || d.exit_interval || enough;
  return d;
}

TrainSummary Trainer::run() {
  summary_.iterations = state_.iteration;
  if (complete()) {                                    // nothing to do: say so rather than re-save and exit silently
    bool by_tokens = state_.iteration < train_iters_;  // train_tokens ended it
    std::string where =
        by_tokens ? std::to_string(state_.consumed_tokens) + " tokens of train_tokens " + std::to_string(train_tokens_)
                  : "iteration " + std::to_string(state_.iteration) + " of train_iters " + std::to_string(train_iters_);
    say("the run in %s is already complete: it is at %s; nothing to train (raise %s, with "
        "--override-opt_param-scheduler where the schedule changes, to continue it)\n",
        resume_from_.c_str(), where.c_str(), by_tokens ? "--train-tokens" : "--train-iters");
    summary_.last_checkpoint = resume_from_;
    return summary_;
  }
  StopSignalScope stop_signals(options_.handle_signals);  // finish the iteration, save, stop
  start_seconds_ = now_seconds();
  start_iteration_ = state_.iteration;
  while (!complete()) {
    StepResult step = train_step();
    summary_.last_loss = step.lm_loss;
    last_step_tokens_ = step.tokens;
    interval_.add(step);
    finish_distillation_if_due();
    bool last = complete();
    if (state_.iteration % cfg_.log_interval == 0 || last) {
      log_interval();
    } else if (tty_) {  // a live progress bar between log lines
      int filled = int(30 * state_.iteration / train_iters_);
      say("\r\033[K[%s%s] %3d%% iteration %lld/%lld | loss %.4f", std::string(size_t(filled), '#').c_str(),
          std::string(size_t(30 - filled), '.').c_str(), int(100 * state_.iteration / train_iters_),
          (long long)state_.iteration, (long long)train_iters_, step.lm_loss);
    }
    if (state_.iteration % cfg_.eval_interval == 0 || last) {
      double v = evaluate();
      if (v >= 0) {
        summary_.last_valid_loss = v;
        clear_progress_bar();
        say("iteration %7lld | validation loss %.4f | perplexity %.2f\n", (long long)state_.iteration, v, std::exp(v));
        record({{"iteration", state_.iteration},
                {"consumed_samples", state_.consumed_samples},
                {"consumed_tokens", state_.consumed_tokens},
                {"split", "valid"},
                {"lm_loss", v},
                {"ppl", std::exp(v)}});
      }
    }
    if (!cfg_.eval_tasks.empty() &&
        (last || (cfg_.eval_tasks_interval > 0 && state_.iteration % cfg_.eval_tasks_interval == 0)))
      run_zero_shot_tasks();
    StopDecision stop = stop_decision();
    if (stop.stop) {
      if (stop.signal) say("\nsignal %d received: saving and stopping\n", stop.signal);
      if (stop.time_up) say("exit_duration_in_mins (%g) reached: saving and stopping\n", cfg_.exit_duration_in_mins);
      if (stop.exit_interval)
        say("iteration %lld: stopping here (exit_interval %lld)\n", (long long)state_.iteration,
            (long long)cfg_.exit_interval);
      summary_.interrupted = stop.interrupted();
      save();
      break;
    }
    if (cfg_.save_interval > 0 && state_.iteration % cfg_.save_interval == 0) save();
  }
  if (complete()) save();
  summary_.iterations = state_.iteration;
  say("peak memory: %.0f MB (resident, rank 0)\n", peak_memory_mb());
  return summary_;
}

TrainSummary run_training(const TrainConfig& cfg, const TrainerOptions& options) {
  Trainer trainer(cfg, options);
  return trainer.run();
}

}  // namespace mt::train
