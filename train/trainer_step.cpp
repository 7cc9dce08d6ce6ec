// The Trainer's work per iteration: one optimizer step, the validation loss, the zero-shot tasks.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "autograd/autocast.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "eval/harness.h"
#include "nn/kd_loss.h"
#include "train/distillation.h"
#include "train/drop_cost.h"
#include "train/expert_bias.h"
#include "train/global_balance.h"
#include "train/metrics_file.h"
#include "train/router_diagnostics.h"
#include "train/trainer.h"

namespace mt::train {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// tokens i32 [B, T+1] -> inputs = tokens[:, :L], labels = tokens[:, 1:L+1], both i32 [B, L], L = T
// or (a curriculum's shorter length) `length`; the loss mask [B, T] is cut to [B, L] the same way.
void split_tokens(const Tensor& tokens, Tensor& inputs, Tensor& labels, int64_t length = 0,
                  Tensor* loss_mask = nullptr) {
  int64_t b = tokens.size(0), t_len = tokens.size(1) - 1, l = length > 0 ? length : t_len;
  inputs = Tensor::empty({b, l}, DType::I32);
  labels = Tensor::empty({b, l}, DType::I32);
  const int32_t* t = tokens.data<int32_t>();
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j < l; ++j) {
      inputs.data<int32_t>()[i * l + j] = t[i * (t_len + 1) + j];
      labels.data<int32_t>()[i * l + j] = t[i * (t_len + 1) + j + 1];
    }
  if (loss_mask && loss_mask->defined() && l < t_len) {
    Tensor cut = Tensor::empty({b, l}, loss_mask->dtype());
    for (int64_t i = 0; i < b; ++i)
      for (int64_t j = 0; j < l; ++j) cut.data<float>()[i * l + j] = loss_mask->data<float>()[i * t_len + j];
    *loss_mask = cut;
  }
}

// One micro-batch of the step as it trains: inputs and labels [B, L], the loss mask [B, L] or
// undefined, the global index of its first sample (its dropout masks and routing keys).
struct StepMicroBatch {
  Tensor inputs, labels, loss_mask;
  int64_t first_sample = 0;
};

// Adds one micro-batch's MoE layer loads into the step's (per layer, in order).
void add_layer_loads(std::vector<nn::LayerLoadStats>& into, const std::vector<nn::LayerLoadStats>& layers) {
  for (const nn::LayerLoadStats& l : layers) {
    auto it = std::find_if(into.begin(), into.end(), [&](const auto& a) { return a.layer == l.layer; });
    if (it == into.end()) {
      into.push_back(l);
      continue;
    }
    it->add(l);
  }
}

}  // namespace

StepResult Trainer::train_step() {
  double start = now_seconds();
  StepResult r;
  r.lr = schedule_->lr(state_.iteration, state_.consumed_tokens);
  // a sequence-length curriculum trains on the first seq_length tokens of each sample (Megatron-
  // DeepSpeed's curriculum_seqlen of step iteration + 1)
  r.seq_length = curriculum_seq_length(cfg_, state_.iteration + 1);
  r.distilled = teacher_ != nullptr;
  ParameterRegistry& params = model_->parameters();
  params.zero_grads();
  if (zero_reducer_) zero_reducer_->zero();
  double loss_scale = scaler_ ? scaler_->scale() : 1.0;
  parallel::Communicator* data_parallel = setup_.groups.data_parallel.get();
  // moe_router_diagnostics: the drop cost of every micro-batch of the steps that end a log interval
  int64_t next = state_.iteration + 1;
  bool drop_cost = cfg_.moe_router_diagnostics && cfg_.moe_router_drop_cost_samples > 0 &&
                   (next % cfg_.log_interval == 0 || next >= train_iters_);
  std::vector<StepMicroBatch> batches(static_cast<size_t>(accumulation_));
  for (StepMicroBatch& b : batches) {
    data::MicroBatch mb = next_micro_batch();
    b.loss_mask = mb.loss_mask;
    b.first_sample = mb.first_sample;
    split_tokens(mb.tokens, b.inputs, b.labels, r.seq_length, &b.loss_mask);
  }
  // global_aux_loss over more than one micro-batch: a counting pass fixes the global batch's fractions
  bool global_balance = !model_->global_aux_fractions().empty() && accumulation_ * setup_.data_parallel > 1;
  {  // the step's micro-batches under one autocast scope: the 16-bit weight copy is refreshed once
    ag::Autocast autocast(compute_, &params);
    if (global_balance) {
      std::vector<Tensor> tokens;
      std::vector<nn::ForwardMode> modes;
      for (const StepMicroBatch& b : batches) tokens.push_back(b.inputs), modes.push_back({true, b.first_sample});
      set_global_aux_fractions(*model_, tokens, modes, data_parallel);
    }
    for (const StepMicroBatch& mb : batches) {
      const Tensor &inputs = mb.inputs, &labels = mb.labels;
      // the LM loss's gradient is the seed below (total = lm + aux terms + kd): known now, so the
      // cross-entropy makes the logits' gradient with its forward (not with a teacher, whose KD
      // term reads the same logits and would keep that gradient alive through its own backward)
      double seed_value = loss_scale / double(accumulation_);
      nn::LossParts parts =
          model_->loss_parts(inputs, labels, mb.loss_mask, {true, mb.first_sample, teacher_ ? 0.0 : seed_value});
      r.lm_loss += parts.lm_loss;
      r.aux_loss += parts.aux_loss;
      r.z_loss += parts.z_loss;
      add_layer_loads(r.layers, parts.layers);
      r.micro_batches += 1;
      Variable total = parts.total;
      if (teacher_) {  // + beta T^2 KL(teacher || student) on the same tokens
        Variable kd = nn::kd_loss(parts.logits, teacher_->logits(inputs), cfg_.kd_temp, cfg_.kd_beta_ce,
                                  cfg_.kd_loss_mask ? mb.loss_mask : Tensor(), setup_.tensor_group);
        r.kd_loss += kd.value().item();
        total = ag::add(total, kd);
      }
      Tensor seed = Tensor::scalar(seed_value, total.dtype());
      {  // ZeRO 2: each layer's gradients reduced into the shards as its backward ends
        ListenToLayerBackward listen(zero_reducer_.get());
        current_tape().backward(total, &seed);
      }
      if (zero_reducer_) zero_reducer_->finish_backward();
      if (drop_cost)
        add_layer_loads(r.layers, measure_drop_cost(*model_, inputs, labels, mb.loss_mask, {true, mb.first_sample},
                                                    cfg_.moe_router_drop_cost_samples, data_parallel));
    }
    if (global_balance) clear_global_aux_fractions(*model_);
  }
  // the MoE layers' loads over the whole global batch (the log's loads, dropped fractions, load CV
  // and dead experts, and the expert bias's update agree under every layout)
  reduce_layer_loads(r.layers, data_parallel);
  // moe_router_diagnostics: the gate's gradient by loss term, of the loss averaged over the ranks
  record_gate_gradients(model_->gate_gradient_terms(), r.layers, data_parallel,
                        1.0 / (double(setup_.data_parallel) * loss_scale));
  double reduce_start = now_seconds();
  r.forward_backward_s = reduce_start - start;
  if (!zero_reducer_) synchronize_gradients(params, setup_);
  // the gradients this rank holds: all of them, or (ZeRO 2) its shards
  HeldGradients held = zero_reducer_ ? zero_reducer_->held() : HeldGradients::whole(params);
  if (scaler_) unscale_gradients(held, loss_scale);
  if (world_.size() > 1) {  // the logged losses: averaged over the ranks
    Tensor losses = Tensor::from_vector(std::vector<double>{r.lm_loss, r.aux_loss, r.kd_loss, r.z_loss}, {4});
    world_.all_reduce(losses, parallel::ReduceKind::Avg);
    r.lm_loss = losses.data<double>()[0];
    r.aux_loss = losses.data<double>()[1];
    r.kd_loss = losses.data<double>()[2];
    r.z_loss = losses.data<double>()[3];
  }
  r.lm_loss /= double(accumulation_);
  r.aux_loss /= double(accumulation_);
  r.z_loss /= double(accumulation_);
  r.kd_loss /= double(accumulation_);
  double optimizer_start = now_seconds();
  r.reduce_s = optimizer_start - reduce_start;
  // The norm is the same on every rank (all-reduced over the expert and tensor groups, gradients
  // synchronised over data parallelism), so every rank takes the same decision.
  r.grad_norm = global_grad_norm(params, held, setup_.expert_group, setup_.tensor_group);
  r.applied = scaler_ ? scaler_->update(!std::isfinite(r.grad_norm)) : true;
  if (r.applied) {
    MT_CHECK(std::isfinite(r.grad_norm), "iteration ", state_.iteration + 1, ": the gradient norm is ", r.grad_norm,
             " (training diverged); lower lr or check the data");
    clip_grad_norm(held, cfg_.clip_grad, r.grad_norm);
    optimizer_->step(r.lr, &held);
    // auxiliary-loss-free balancing: each bias a step toward the global batch's mean load
    update_expert_biases(model_->expert_biases(), r.layers, cfg_.moe_router_bias_update_rate);
  }
  if (scaler_) state_.loss_scale = scaler_->state();
  r.tokens = global_batch_ * r.seq_length;  // Megatron-DeepSpeed counts a curriculum's tokens so
  r.model_flops = double(r.tokens) * model_->train_flops_per_token(r.seq_length);
  state_.iteration += 1;
  state_.consumed_samples += global_batch_;
  state_.consumed_tokens += r.tokens;
  double end = now_seconds();
  r.optimizer_s = end - optimizer_start;
  r.seconds = end - start;
  return r;
}

// The LM loss (as Megatron reports) over eval_iters global batches of the validation split,
// continuing through it from one evaluation to the next, in the training's precision.
double Trainer::evaluate() {
  if (!datasets_[1] || cfg_.eval_iters == 0) return -1;
  NoGradGuard no_grad;
  ag::Autocast autocast(compute_, &model_->parameters());
  data::LoaderOptions vo = loader_options_;
  int64_t per_eval = cfg_.eval_iters * global_batch_;
  vo.consumed_samples = (evals_done_ * per_eval) % std::max<int64_t>(datasets_[1]->size() - per_eval + 1, 1);
  data::GptLoader valid(datasets_[1], vo);
  double total = 0;
  int64_t n = 0;
  for (int64_t i = 0; i < cfg_.eval_iters * accumulation_ && valid.remaining_steps() > 0; ++i, ++n) {
    data::MicroBatch mb = valid.next();
    Tensor inputs, labels;
    split_tokens(mb.tokens, inputs, labels);
    total += model_->loss_parts(inputs, labels, mb.loss_mask).lm_loss;
  }
  ++evals_done_;
  if (setup_.data_parallel > 1) {  // each rank evaluated its slice of the same global batches: average
    Tensor t = Tensor::from_vector(std::vector<double>{total, double(n)}, {2});
    world_.all_reduce(t, parallel::ReduceKind::Sum);
    total = t.data<double>()[0];
    n = int64_t(t.data<double>()[1]);
  }
  return n ? total / double(n) : -1;
}

// The zero-shot tasks (eval/harness.h), eval_tasks_limit documents each, into the log and
// the metrics (split "tasks").
void Trainer::run_zero_shot_tasks() {
  eval::EvalOptions eo;
  eo.tasks = cfg_.eval_tasks;
  eo.task_data = cfg_.eval_task_data;
  eo.limit = cfg_.eval_tasks_limit;
  eo.verbose = false;
  // split over the ranks, unless expert parallelism needs every rank in every forward
  eo.ranks = world_.size() > 1 && !setup_.expert_group ? &world_ : nullptr;
  ag::Autocast autocast(compute_, &model_->parameters());
  std::map<std::string, eval::TaskRun> runs = eval::evaluate_model(*model_, tokenizer_, eo);
  nlohmann::json line = {{"iteration", state_.iteration},
                         {"consumed_samples", state_.consumed_samples},
                         {"consumed_tokens", state_.consumed_tokens},
                         {"split", "tasks"}};
  std::string text;
  for (const auto& [name, run] : runs) {
    if (!run.missing.empty()) {
      text += " | " + name + " skipped (no data)";
      continue;
    }
    for (const auto& [metric, value] : run.metrics.values) {
      line[name + "_" + metric] = value;
      char buf[64];
      std::snprintf(buf, sizeof buf, " | %s %s %.4f", name.c_str(), metric.c_str(), value);
      text += buf;
    }
  }
  clear_progress_bar();
  say("iteration %7lld | zero-shot%s\n", (long long)state_.iteration, text.c_str());
  record(line);
}

}  // namespace mt::train
