#include "train/trainer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "autograd/autocast.h"
#include "autograd/ops.h"
#include "autograd/tape.h"
#include "data/gpt2_tokenizer.h"
#include "data/loader.h"
#include "nn/gpt.h"
#include "nn/kd_loss.h"
#include "parallel/communicator.h"
#include "parallel/process_groups.h"
#include "runtime/ops.h"
#include "runtime/text_util.h"
#include "train/checkpoint.h"
#include "train/distillation.h"
#include "train/eval_harness.h"
#include "train/model_config.h"
#include "train/optimizer.h"
#include "train/parallel_setup.h"
#include "train/stop_signals.h"

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

std::string format_duration(double s) {
  char buf[32];
  int64_t t = int64_t(s);
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(t / 3600), (long long)(t / 60 % 60),
                (long long)(t % 60));
  return buf;
}

// inputs = tokens[:, :L], labels = tokens[:, 1:]
void split_tokens(const Tensor& tokens, Tensor& inputs, Tensor& labels) {
  int64_t b = tokens.size(0), l = tokens.size(1) - 1;
  inputs = Tensor::empty({b, l}, DType::I32);
  labels = Tensor::empty({b, l}, DType::I32);
  const int32_t* t = tokens.data<int32_t>();
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j < l; ++j) {
      inputs.data<int32_t>()[i * l + j] = t[i * (l + 1) + j];
      labels.data<int32_t>()[i * l + j] = t[i * (l + 1) + j + 1];
    }
}

// Appends one JSON object per line; flushed at once so a crash loses nothing logged.
class MetricsFile {
 public:
  explicit MetricsFile(const std::string& path) {
    if (path.empty()) return;
    std::filesystem::path p(path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    out_.open(path, std::ios::app);
    MT_CHECK(out_, "cannot open the metrics file '", path, "'");
  }
  void write(const nlohmann::json& j) {
    if (!out_.is_open()) return;
    out_ << j.dump() << "\n";
    out_.flush();
  }

 private:
  std::ofstream out_;
};

}  // namespace

TrainSummary run_training(const TrainConfig& cfg_in, const TrainerOptions& options) {
  TrainConfig cfg = cfg_in;
  // Tensor, data and expert parallel groups over the processes mpirun started (one process:
  // world size 1); train/parallel_setup.h.
  parallel::Communicator& world = parallel::world();
  ParallelSetup setup = make_parallel_setup(cfg, world);
  int64_t dp = setup.data_parallel;
  parallel::Communicator *expert_group = setup.expert_group, *tensor_group = setup.tensor_group;
  bool lead = world.rank() == 0;  // prints, writes metrics and checkpoints
  CheckpointLayout checkpoint_parts = checkpoint_layout(setup.layout, setup.groups, world.rank());
  auto say = [&](const char* fmt, auto... args) {
    if (!options.quiet && lead) {
      std::printf(fmt, args...);
      std::fflush(stdout);
    }
  };

  // --- tokenizer (vocabulary size and EOD), model, optimizer
  data::Gpt2Tokenizer tokenizer = config_tokenizer(cfg);
  // Weights, gradients and AdamW's two moments: 16 bytes per parameter in fp32. Refuse early and
  // clearly rather than be killed by the kernel's out-of-memory handler halfway through.
  int64_t n_params = count_parameters(cfg, tokenizer.vocab_size());
  double need_gb = double(n_params) * 16.0 / 1e9;
  double have_gb = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE)) / 1e9;
  MT_CHECK(need_gb < 0.9 * have_gb, "the model has ", n_params / 1000000, "M parameters: training needs about ",
           int64_t(need_gb), " GB for weights, gradients and AdamW state, and this machine has ", int64_t(have_gb),
           " GB (spread the experts over ranks with expert parallelism, or use a smaller configuration)");
  nn::GptConfig mc = model_config(cfg, tokenizer.vocab_size());
  std::unique_ptr<nn::GptModel> model_ptr = make_model(cfg, tokenizer.vocab_size(), expert_group, tensor_group);
  nn::GptModel& model = *model_ptr;
  AdamW optimizer(model.parameters(), {cfg.adam_beta1, cfg.adam_beta2, cfg.adam_eps, cfg.weight_decay});

  int64_t gbs = cfg.global_batch_size > 0 ? cfg.global_batch_size : cfg.micro_batch_size;
  int64_t accumulation = gbs / (cfg.micro_batch_size * dp);
  int64_t tokens_per_iter = gbs * cfg.seq_length;
  int64_t train_iters =
      cfg.train_iters > 0 ? cfg.train_iters : (cfg.train_tokens + tokens_per_iter - 1) / tokens_per_iter;
  LrSchedule schedule(cfg, train_iters);
  // Mixed precision: the GEMMs' operand dtype; fp16 also scales the loss (train/loss_scaler.h).
  DType compute = cfg.compute_dtype();
  std::optional<LossScaler> scaler;
  if (compute == DType::F16)
    scaler.emplace(LossScalerConfig{cfg.loss_scale, cfg.initial_loss_scale, cfg.min_loss_scale, cfg.loss_scale_window,
                                    cfg.hysteresis});

  // --- resume
  TrainState state;
  std::string resume_from = cfg.load.empty() ? "" : resolve_checkpoint(cfg.load);
  if (!resume_from.empty()) {
    state = load_checkpoint(resume_from, model.parameters(), &optimizer, checkpoint_parts);
    say("resumed from %s at iteration %lld (%lld samples consumed)\n", resume_from.c_str(), (long long)state.iteration,
        (long long)state.consumed_samples);
    // fp16's dynamic scale resumes where it was; a constant loss_scale, or bf16/fp32, starts clean
    if (scaler && cfg.loss_scale == 0 && state.loss_scale.scale > 0) scaler->set_state(state.loss_scale);
    if (!scaler) state.loss_scale = LossScalerState{0.0, 0, 0};
  } else if (!cfg.load.empty()) {
    say("no checkpoint in '%s': starting from scratch\n", cfg.load.c_str());
  }

  // --- distillation (MoS / KD): the frozen teacher, while the KD term is on
  std::unique_ptr<Teacher> teacher;
  bool init_from_teacher = resume_from.empty() && !cfg.student_init_from_teacher_layers.empty();
  if (kd_active(cfg, state.iteration + 1) || (cfg.distills() && init_from_teacher)) {
    teacher = std::make_unique<Teacher>(cfg, tokenizer.vocab_size(), setup, world.rank());
    say("teacher: %s (%.2fM parameters, frozen, evaluation mode); KD at temperature %g, beta %g, %s%s\n",
        teacher->checkpoint().c_str(), double(teacher->model().parameters().numel()) / 1e6, cfg.kd_temp, cfg.kd_beta_ce,
        cfg.kd_loss_mask ? "loss-masked" : "every position",
        cfg.kd_stop_step > 0 ? (", until iteration " + std::to_string(cfg.kd_stop_step)).c_str() : "");
    if (init_from_teacher) {
      init_student_from_teacher(model.parameters(), teacher->model().parameters(),
                                cfg.student_init_from_teacher_layers);
      say("student initialised from teacher layers [%s]\n", join(cfg.student_init_from_teacher_layers).c_str());
    }
    if (!kd_active(cfg, state.iteration + 1)) teacher.reset();
  }

  // --- data: as many samples as Megatron builds for this run
  int64_t evals = train_iters / cfg.eval_interval + 1;
  std::array<int64_t, 3> samples = {train_iters * gbs, evals * cfg.eval_iters * gbs, cfg.eval_iters * gbs};
  auto datasets = data::build_train_valid_test(data::parse_data_path(cfg.data_path), cfg.split, samples, cfg.seq_length,
                                               uint32_t(cfg.seed), true, cfg.data_cache_path);
  MT_CHECK(datasets[0], "data_path ", cfg.data_path[0], ": the train split of '", cfg.split, "' is empty");
  data::LoaderOptions lo;
  lo.micro_batch = cfg.micro_batch_size;
  lo.dp_size = dp;
  lo.dp_rank = setup.data_parallel_rank();
  lo.consumed_samples = state.consumed_samples;
  lo.eod_mask_loss = cfg.eod_mask_loss;
  lo.eod = tokenizer.eod();
  data::GptLoader loader(datasets[0], lo);

  std::string metrics_path = !cfg.metrics_file.empty() ? cfg.metrics_file
                             : !cfg.save.empty()       ? (std::filesystem::path(cfg.save) / "metrics.jsonl").string()
                                                       : "";
  MetricsFile metrics(lead ? metrics_path : "");
  double flops_per_token = model.train_flops_per_token(cfg.seq_length);
  // MFU: the job's model FLOP/s over the peak of all its devices (when the device's peak is known)
  double peak_tflops = cfg.peak_tflops > 0 ? cfg.peak_tflops : backend_for(mc.device).peak_tflops(compute);

  say("moetrain train: %lld layers, hidden %lld, %lld heads, seq %lld, vocab %lld (padded), %.2fM parameters\n",
      (long long)cfg.num_layers, (long long)cfg.hidden_size, (long long)cfg.num_attention_heads,
      (long long)cfg.seq_length, (long long)mc.padded_vocab_size, double(model.parameters().numel()) / 1e6);
  say("%lld iterations of %lld samples (%lld micro-batches of %lld), %lld tokens each\n", (long long)train_iters,
      (long long)gbs, (long long)accumulation, (long long)cfg.micro_batch_size, (long long)tokens_per_iter);

  // --- evaluation on the validation split: eval_iters global batches, continuing through it
  int64_t evals_done = state.iteration / cfg.eval_interval;
  auto evaluate = [&]() -> double {
    if (!datasets[1] || cfg.eval_iters == 0) return -1;
    NoGradGuard no_grad;
    ag::Autocast autocast(compute, &model.parameters());  // evaluate in the training's precision
    data::LoaderOptions vo = lo;
    int64_t per_eval = cfg.eval_iters * gbs;
    vo.consumed_samples = (evals_done * per_eval) % std::max<int64_t>(datasets[1]->size() - per_eval + 1, 1);
    data::GptLoader valid(datasets[1], vo);
    double total = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < cfg.eval_iters * accumulation && valid.remaining_steps() > 0; ++i, ++n) {
      data::MicroBatch mb = valid.next();
      Tensor inputs, labels;
      split_tokens(mb.tokens, inputs, labels);
      total += model.loss_parts(inputs, labels, mb.loss_mask).lm_loss;  // the LM loss, as Megatron reports
    }
    ++evals_done;
    if (dp > 1) {  // each rank evaluated its slice of the same global batches: average over ranks
      Tensor t = Tensor::from_vector(std::vector<double>{total, double(n)}, {2});
      world.all_reduce(t, parallel::ReduceKind::Sum);
      total = t.data<double>()[0];
      n = int64_t(t.data<double>()[1]);
    }
    return n ? total / double(n) : -1;
  };

  // --- signals: finish the iteration, checkpoint, stop (train/stop_signals.h)
  StopSignalScope stop_signals(options.handle_signals);
  std::string config_yaml = to_yaml(cfg);
  TrainSummary summary;
  int64_t saved_at = -1;
  auto save = [&] {  // collective: rank 0 gathers the experts and shards and writes, the others wait
    if (cfg.save.empty() || saved_at == state.iteration) return;
    std::string dir = save_checkpoint(cfg.save, state, model.parameters(), &optimizer, config_yaml, cfg.keep_last_n,
                                      checkpoint_parts);
    if (lead) summary.last_checkpoint = dir;
    world.barrier();
    saved_at = state.iteration;
    say("saved checkpoint %s\n", summary.last_checkpoint.c_str());
  };

  // The live progress bar only in a terminal of a single process (mpirun gives ranks a pseudo-
  // terminal even when the job's output goes to a file).
  bool tty = !options.quiet && lead && world.size() == 1 && isatty(fileno(stdout));
  double start = now_seconds(), interval_seconds = 0, interval_loss = 0, interval_aux = 0, interval_kd = 0;
  double last_norm = 0;
  int64_t interval_kd_iters = 0;  // iterations of the interval that trained with the KD term
  int64_t interval_skipped = 0;   // fp16: iterations whose gradients overflowed (no update)
  // MoE layer loads summed over the log interval: per layer, expert counts, and sums of dropped
  // fraction, aux loss and router entropy (averaged when logged).
  std::map<int64_t, nn::LayerLoadStats> loads;
  int64_t load_samples = 0;
  int64_t interval_iters = 0, start_iteration = state.iteration;
  while (state.iteration < train_iters) {
    double step_start = now_seconds();
    double lr = schedule.lr(state.iteration, state.consumed_tokens);
    model.parameters().zero_grads();
    double loss_sum = 0, aux_sum = 0, kd_sum = 0;
    double loss_scale = scaler ? scaler->scale() : 1.0;
    {  // the step's micro-batches under one autocast scope: the 16-bit weight copy is refreshed once
      ag::Autocast autocast(compute, &model.parameters());
      for (int64_t micro = 0; micro < accumulation; ++micro) {
        data::MicroBatch mb = loader.next();
        Tensor inputs, labels;
        split_tokens(mb.tokens, inputs, labels);
        nn::LossParts parts = model.loss_parts(inputs, labels, mb.loss_mask, {true, mb.first_sample});
        loss_sum += parts.lm_loss;
        aux_sum += parts.aux_loss;
        for (const nn::LayerLoadStats& l : parts.layers) {
          nn::LayerLoadStats& acc = loads[l.layer];
          acc.layer = l.layer;
          acc.expert_counts.resize(l.expert_counts.size(), 0);
          for (size_t e = 0; e < l.expert_counts.size(); ++e) acc.expert_counts[e] += l.expert_counts[e];
          acc.dropped += l.dropped;
          acc.aux_loss += l.aux_loss;
          acc.entropy += l.entropy;
        }
        ++load_samples;
        Variable total = parts.total;
        if (teacher) {  // + beta T^2 KL(teacher || student) on the same tokens
          Variable kd = nn::kd_loss(parts.logits, teacher->logits(inputs), cfg.kd_temp, cfg.kd_beta_ce,
                                    cfg.kd_loss_mask ? mb.loss_mask : Tensor(), tensor_group);
          kd_sum += kd.value().item();
          total = ag::add(total, kd);
        }
        Tensor seed = Tensor::scalar(loss_scale / double(accumulation), total.dtype());
        current_tape().backward(total, &seed);
      }
    }
    synchronize_gradients(model.parameters(), setup);
    if (scaler) unscale_gradients(model.parameters(), loss_scale);
    if (world.size() > 1) {  // the logged losses: averaged over the ranks
      Tensor losses = Tensor::from_vector(std::vector<double>{loss_sum, aux_sum, kd_sum}, {3});
      world.all_reduce(losses, parallel::ReduceKind::Avg);
      loss_sum = losses.data<double>()[0];
      aux_sum = losses.data<double>()[1];
      kd_sum = losses.data<double>()[2];
    }
    // The norm is the same on every rank (all-reduced over the expert and tensor groups, gradients
    // synchronised over data parallelism), so every rank takes the same decision.
    double norm = global_grad_norm(model.parameters(), expert_group, tensor_group);
    bool apply = scaler ? scaler->update(!std::isfinite(norm)) : true;
    if (apply) {
      MT_CHECK(std::isfinite(norm), "iteration ", state.iteration + 1, ": the gradient norm is ", norm,
               " (training diverged); lower lr or check the data");
      clip_grad_norm(model.parameters(), cfg.clip_grad, norm);
      optimizer.step(lr);
    } else {
      interval_skipped += 1;
    }
    if (scaler) state.loss_scale = scaler->state();
    state.iteration += 1;
    state.consumed_samples += gbs;
    state.consumed_tokens += tokens_per_iter;
    double loss = loss_sum / double(accumulation);
    summary.last_loss = loss;
    interval_loss += loss;
    interval_aux += aux_sum / double(accumulation);
    if (teacher) {
      interval_kd += kd_sum / double(accumulation);
      interval_kd_iters += 1;
    }
    interval_iters += 1;
    last_norm = norm;
    if (teacher && !kd_active(cfg, state.iteration + 1)) {  // staged KD: the LM loss only from here on
      teacher.reset();
      if (tty) say("\r\033[K");
      say("iteration %lld: distillation stops (kd_stop_step %lld): from iteration %lld on the student trains on "
          "its own loss; the teacher's memory is freed\n",
          (long long)state.iteration, (long long)cfg.kd_stop_step, (long long)state.iteration + 1);
      metrics.write({{"iteration", state.iteration}, {"event", "kd_stopped"}, {"kd_stop_step", cfg.kd_stop_step}});
    }

    double now = now_seconds();
    interval_seconds += now - step_start;  // training time only: evaluations and saves are not counted
    if (state.iteration % cfg.log_interval == 0 || state.iteration == train_iters) {
      double tok_s = double(interval_iters * tokens_per_iter) / interval_seconds;
      double elapsed = now - start, per_iter = elapsed / double(state.iteration - start_iteration);
      double eta = per_iter * double(train_iters - state.iteration);
      if (tty) say("\r\033[K");
      std::string moe_part;  // the KD and MoE terms of the training loss, when present
      if (interval_kd_iters > 0) {
        char buf[64];
        std::snprintf(buf, sizeof buf, " | kd loss %.4f", interval_kd / double(interval_kd_iters));
        moe_part = buf;
      }
      if (!loads.empty()) {
        char buf[64];
        std::snprintf(buf, sizeof buf, " | moe loss %.4f", cfg.moe_loss_coeff * interval_aux / double(interval_iters));
        moe_part += buf;
      }
      if (scaler) {  // fp16: the loss scale now, and the steps skipped since the last line
        char buf[80];
        std::snprintf(buf, sizeof buf, " | loss scale %g | skipped %lld", scaler->scale(), (long long)interval_skipped);
        moe_part += buf;
      }
      double tflops = tok_s * flops_per_token * 1e-12;
      double mfu = peak_tflops > 0 ? tflops / (peak_tflops * double(world.size())) : 0.0;
      std::string mfu_part;
      if (mfu > 0) {
        char buf[32];
        std::snprintf(buf, sizeof buf, " | MFU %.1f%%", 100.0 * mfu);
        mfu_part = buf;
      }
      say("iteration %7lld/%lld | tokens %11lld | loss %.4f%s | lr %.3e | grad norm %.3f | %8.0f tokens/s | "
          "%.3f TFLOP/s%s | elapsed %s | ETA %s\n",
          (long long)state.iteration, (long long)train_iters, (long long)state.consumed_tokens,
          interval_loss / double(interval_iters), moe_part.c_str(), lr, last_norm, tok_s, tflops, mfu_part.c_str(),
          format_duration(elapsed).c_str(), format_duration(eta).c_str());
      nlohmann::json line = {{"iteration", state.iteration},
                             {"consumed_tokens", state.consumed_tokens},
                             {"split", "train"},
                             {"lm_loss", interval_loss / double(interval_iters)},
                             {"lr", lr},
                             {"grad_norm", last_norm},
                             {"tokens_per_s", tok_s},
                             {"tflops", tok_s * flops_per_token * 1e-12},
                             {"elapsed_s", elapsed},
                             {"max_rss_mb", peak_memory_mb()}};
      if (interval_kd_iters > 0) line["kd_loss"] = interval_kd / double(interval_kd_iters);
      if (mfu > 0) line["mfu"] = mfu;
      if (scaler) {
        line["loss_scale"] = scaler->scale();
        line["skipped_iterations"] = interval_skipped;
      }
      if (!loads.empty()) {
        line["moe_aux_loss"] = interval_aux / double(interval_iters);
        line["moe_loss"] = cfg.moe_loss_coeff * interval_aux / double(interval_iters);
        nlohmann::json layers = nlohmann::json::array();
        std::string table;
        for (auto& [layer, l] : loads) {
          double n = double(load_samples);
          layers.push_back({{"layer", layer},
                            {"expert_counts", l.expert_counts},
                            {"dropped", l.dropped / n},
                            {"aux_loss", l.aux_loss / n},
                            {"entropy", l.entropy / n}});
          int64_t total = 0, most = 0;
          for (int64_t c : l.expert_counts) total += c, most = std::max(most, c);
          char buf[160];
          std::snprintf(buf, sizeof buf,
                        "  layer %2lld: %zu experts, busiest %4.1f%% of tokens, dropped %4.1f%%, "
                        "aux %.3f, entropy %.3f\n",
                        (long long)layer + 1, l.expert_counts.size(),
                        total ? 100.0 * double(most) / double(total) : 0.0, 100.0 * l.dropped / n, l.aux_loss / n,
                        l.entropy / n);
          table += buf;
        }
        line["moe_layers"] = layers;
        say("%s", table.c_str());
        loads.clear();
        load_samples = 0;
      }
      metrics.write(line);
      interval_seconds = 0;
      interval_loss = 0;
      interval_aux = 0;
      interval_kd = 0;
      interval_kd_iters = 0;
      interval_skipped = 0;
      interval_iters = 0;
    } else if (tty) {  // a live progress bar between log lines
      int filled = int(30 * state.iteration / train_iters);
      say("\r\033[K[%s%s] %3d%% iteration %lld/%lld | loss %.4f", std::string(size_t(filled), '#').c_str(),
          std::string(size_t(30 - filled), '.').c_str(), int(100 * state.iteration / train_iters),
          (long long)state.iteration, (long long)train_iters, loss);
    }
    if (state.iteration % cfg.eval_interval == 0 || state.iteration == train_iters) {
      double v = evaluate();
      if (v >= 0) {
        summary.last_valid_loss = v;
        if (tty) say("\r\033[K");
        say("iteration %7lld | validation loss %.4f | perplexity %.2f\n", (long long)state.iteration, v, std::exp(v));
        metrics.write({{"iteration", state.iteration},
                       {"consumed_tokens", state.consumed_tokens},
                       {"split", "valid"},
                       {"lm_loss", v},
                       {"ppl", std::exp(v)}});
      }
    }
    bool tasks_now =
        !cfg.eval_tasks.empty() && (state.iteration == train_iters ||
                                    (cfg.eval_tasks_interval > 0 && state.iteration % cfg.eval_tasks_interval == 0));
    if (tasks_now) {  // zero-shot tasks (train/eval_harness.h), the limit of documents each
      EvalOptions eo;
      eo.tasks = cfg.eval_tasks;
      eo.task_data = cfg.eval_task_data;
      eo.limit = cfg.eval_tasks_limit;
      eo.verbose = false;
      // split over the ranks, unless expert parallelism needs every rank in every forward
      eo.ranks = world.size() > 1 && !expert_group ? &world : nullptr;
      ag::Autocast autocast(compute, &model.parameters());
      std::map<std::string, TaskRun> runs = evaluate_model(model, tokenizer, eo);
      nlohmann::json line = {
          {"iteration", state.iteration}, {"consumed_tokens", state.consumed_tokens}, {"split", "tasks"}};
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
      if (tty) say("\r\033[K");
      say("iteration %7lld | zero-shot%s\n", (long long)state.iteration, text.c_str());
      metrics.write(line);
    }
    bool time_up = cfg.exit_duration_in_mins > 0 && (now - start) / 60.0 >= cfg.exit_duration_in_mins;
    bool exit_now = cfg.exit_interval > 0 && state.iteration % cfg.exit_interval == 0 && state.iteration < train_iters;
    bool stop_here =
        exit_now || (options.stop_after_iters > 0 && state.iteration - start_iteration >= options.stop_after_iters);
    if (world.size() > 1) {  // stop together: a signal or the clock seen by any rank stops every rank here
      Tensor flags = Tensor::from_vector(std::vector<double>{double(stop_signal()), time_up ? 1.0 : 0.0}, {2});
      world.all_reduce(flags, parallel::ReduceKind::Max);
      if (flags.data<double>()[0] > 0) set_stop_signal(int(flags.data<double>()[0]));
      time_up = flags.data<double>()[1] > 0;
    }
    if (stop_signal() || time_up || stop_here) {
      if (stop_signal()) say("\nsignal %d received: saving and stopping\n", stop_signal());
      if (time_up) say("exit_duration_in_mins (%g) reached: saving and stopping\n", cfg.exit_duration_in_mins);
      if (exit_now)
        say("iteration %lld: stopping here (exit_interval %lld)\n", (long long)state.iteration,
            (long long)cfg.exit_interval);
      summary.interrupted = stop_signal() != 0 || time_up;
      save();
      break;
    }
    if (cfg.save_interval > 0 && state.iteration % cfg.save_interval == 0) save();
  }
  if (state.iteration >= train_iters) save();
  summary.iterations = state.iteration;
  say("peak memory: %.0f MB (resident, rank 0)\n", peak_memory_mb());
  return summary;
}

}  // namespace mt::train
