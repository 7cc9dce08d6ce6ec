#include "train/interval_log.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace mt::train {
namespace {

// printf into a std::string (the log's fields are short).
template <typename... Args>
std::string format(const char* fmt, Args... args) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

// nats of LM loss per rescued token (0 when nothing was dropped)
double drop_cost(const nn::LayerLoadStats& l) {
  return l.drop_cost_tokens > 0 ? l.drop_cost_sum / double(l.drop_cost_tokens) : 0.0;
}

}  // namespace

LoadBalance load_balance(const std::vector<int64_t>& counts) {
  LoadBalance b;
  if (counts.empty()) return b;
  double mean = 0, var = 0;
  for (int64_t c : counts) mean += double(c) / double(counts.size());
  for (int64_t c : counts) var += (double(c) - mean) * (double(c) - mean) / double(counts.size());
  b.cv = mean > 0 ? std::sqrt(var) / mean : 0.0;
  for (int64_t c : counts) b.dead += c == 0 ? 1 : 0;
  return b;
}

std::string format_duration(double s) {
  int64_t t = int64_t(s);
  return format("%lld:%02lld:%02lld", (long long)(t / 3600), (long long)(t / 60 % 60), (long long)(t % 60));
}

void IntervalLog::add(const StepResult& step) {
  iterations_ += 1;
  seconds_ += step.seconds;
  lm_loss_ += step.lm_loss;
  aux_loss_ += step.aux_loss;
  z_loss_ += step.z_loss;
  if (step.distilled) {
    kd_loss_ += step.kd_loss;
    distilled_ += 1;
  }
  if (!step.applied) skipped_ += 1;
  last_lr_ = step.lr;
  last_norm_ = step.grad_norm;
  micro_batches_ += step.micro_batches;
  tokens_ += step.tokens;
  model_flops_ += step.model_flops;
  last_seq_length_ = step.seq_length;
  forward_backward_s_ += step.forward_backward_s;
  reduce_s_ += step.reduce_s;
  optimizer_s_ += step.optimizer_s;
  for (const nn::LayerLoadStats& l : step.layers) {
    nn::LayerLoadStats& acc = layers_[l.layer];
    acc.layer = l.layer;
    acc.add(l);  // (the gate-gradient figures are per step: averaged over the interval's iterations)
  }
}

double IntervalLog::mfu(const IntervalContext& c) const {
  return c.peak_tflops > 0 ? tflops() / (c.peak_tflops * double(c.devices)) : 0.0;
}

std::string IntervalLog::render_text(const IntervalContext& c) const {
  double n = double(iterations_), tok_s = tokens_per_second();
  std::string terms;  // the KD and MoE terms of the training loss, and fp16's scale, when present
  if (distilled_ > 0) terms += format(" | kd loss %.4f", kd_loss_ / double(distilled_));
  if (!layers_.empty()) terms += format(" | moe loss %.4f", c.moe_loss_coeff * aux_loss_ / n);
  if (!layers_.empty() && c.moe_z_loss_coeff > 0) terms += format(" | z loss %.4f", c.moe_z_loss_coeff * z_loss_ / n);
  if (c.loss_scale > 0) terms += format(" | loss scale %g | skipped %lld", c.loss_scale, (long long)skipped_);
  if (c.curriculum) terms += format(" | curriculum seqlen %lld", (long long)last_seq_length_);
  std::string mfu_part = mfu(c) > 0 ? format(" | MFU %.1f%%", 100.0 * mfu(c)) : "";
  std::string text =
      format("iteration %7lld/%lld | tokens %11lld | loss %.4f", (long long)c.iteration, (long long)c.train_iters,
             (long long)c.consumed_tokens, lm_loss_ / n) +
      terms +
      format(" | lr %.3e | grad norm %.3f | %8.0f tokens/s | %.3f TFLOP/s", last_lr_, last_norm_, tok_s, tflops()) +
      mfu_part + " | elapsed " + format_duration(c.elapsed_s) + " | ETA " + format_duration(c.eta_s) + "\n";
  if (c.timers_in_log)  // per iteration, as Megatron's timers print them
    text += format("  time (ms) | forward-backward %.1f | grads-reduce %.1f | optimizer %.1f\n",
                   1e3 * forward_backward_s_ / n, 1e3 * reduce_s_ / n, 1e3 * optimizer_s_ / n);
  for (const auto& [layer, l] : layers_) {
    double mb = double(micro_batches_);
    int64_t total = 0, most = 0;
    for (int64_t count : l.expert_counts) total += count, most = std::max(most, count);
    std::string z = c.moe_z_loss_coeff > 0 ? format(", z %.3f", l.z_loss / mb) : "";
    if (l.has_gate_gradients) z += format(", interference %+.3f", l.interference / n);
    if (l.has_drop_cost) z += format(", drop cost %.4f (%lld)", drop_cost(l), (long long)l.drop_cost_tokens);
    LoadBalance b = load_balance(l.expert_counts);
    text += format(
        "  layer %2lld: %zu experts, busiest %4.1f%% of tokens, load cv %.2f, dead %lld, dropped %4.1f%%, aux %.3f%s, "
        "entropy %.3f\n",
        (long long)layer + 1, l.expert_counts.size(), total ? 100.0 * double(most) / double(total) : 0.0, b.cv,
        (long long)b.dead, 100.0 * l.dropped / mb, l.aux_loss / mb, z.c_str(), l.entropy / mb);
  }
  return text;
}

nlohmann::json IntervalLog::render_record(const IntervalContext& c) const {
  double n = double(iterations_), tok_s = tokens_per_second();
  nlohmann::json line = {{"iteration", c.iteration},
                         {"consumed_tokens", c.consumed_tokens},
                         {"consumed_samples", c.consumed_samples},
                         {"batch_size", c.batch_size},
                         {"iteration_time_s", seconds_ / n},
                         {"split", "train"},
                         {"lm_loss", lm_loss_ / n},
                         {"lr", last_lr_},
                         {"grad_norm", last_norm_},
                         {"tokens_per_s", tok_s},
                         {"tflops", tflops()},
                         {"elapsed_s", c.elapsed_s},
                         {"max_rss_mb", c.max_rss_mb}};
  if (distilled_ > 0) line["kd_loss"] = kd_loss_ / double(distilled_);
  if (mfu(c) > 0) line["mfu"] = mfu(c);
  if (c.curriculum) line["curriculum_seqlen"] = last_seq_length_;
  if (c.timers)  // seconds per iteration (Megatron's timers.write: <name>-time)
    line["timers"] = {{"forward-backward", forward_backward_s_ / n},
                      {"grads-reduce", reduce_s_ / n},
                      {"optimizer", optimizer_s_ / n}};
  if (c.loss_scale > 0) {
    line["loss_scale"] = c.loss_scale;
    line["skipped_iterations"] = skipped_;
  }
  if (!layers_.empty()) {
    line["moe_aux_loss"] = aux_loss_ / n;
    line["moe_loss"] = c.moe_loss_coeff * aux_loss_ / n;
    if (c.moe_z_loss_coeff > 0) {  // the router z-loss, unweighted and as added to the loss
      line["moe_z_loss"] = z_loss_ / n;
      line["z_loss"] = c.moe_z_loss_coeff * z_loss_ / n;
    }
    nlohmann::json layers = nlohmann::json::array();
    double mb = double(micro_batches_);
    for (const auto& [layer, l] : layers_) {
      nlohmann::json row = {{"layer", layer},
                            {"expert_counts", l.expert_counts},
                            {"dropped", l.dropped / mb},
                            {"aux_loss", l.aux_loss / mb},
                            {"entropy", l.entropy / mb}};
      if (c.moe_z_loss_coeff > 0) row["z_loss"] = l.z_loss / mb;
      if (l.has_gate_gradients) {  // the gate's gradient by loss term (moe_router_diagnostics)
        row["gate_grad_norm_lm"] = l.gate_grad_lm / n;
        row["gate_grad_norm_balance"] = l.gate_grad_balance / n;
        row["gate_grad_norm_z"] = l.gate_grad_z / n;
        row["interference"] = l.interference / n;
      }
      if (l.has_drop_cost) {  // nats per rescued token, and how many were rescued (moe_router_diagnostics)
        row["drop_cost"] = drop_cost(l);
        row["drop_cost_tokens"] = l.drop_cost_tokens;
      }
      LoadBalance b = load_balance(l.expert_counts);
      row["load_cv"] = b.cv;
      row["dead_experts"] = b.dead;
      layers.push_back(row);
    }
    line["moe_layers"] = layers;
  }
  return line;
}

}  // namespace mt::train
