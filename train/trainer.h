// `moetrain train`: the training loop as a Trainer with named phases, the way Megatron's
// pretrain() reads (train_step, training_log, evaluate_and_print_results,
// checkpoint_and_decide_exit):
//   Trainer(cfg)        parallel setup, model, optimizer, resume, the save folder, teacher, data
//   train_step()        one optimizer step: global_batch_size samples as micro-batches with
//                       gradient accumulation (+ the KD term), gradient reduction over the ranks,
//                       fp16 unscale and skip, global norm, clipping, AdamW at the scheduled lr
//   log_interval()      the log line and the metrics.jsonl record (train/interval_log.h)
//   evaluate()          the validation loss over eval_iters global batches
//   run_zero_shot_tasks()  eval_tasks on the model (eval/harness.h)
//   save()              a checkpoint (collective; rank 0 writes; train/checkpoint.h)
//   stop_decision()     a signal, the clock, exit_interval: all ranks agree
// run() loops over them; run_training(cfg) is Trainer(cfg).run(). With `load` set it resumes
// exactly where the checkpoint left off.
#pragma once

#include <array>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "data/gpt2_tokenizer.h"
#include "data/gpt_dataset.h"
#include "data/loader.h"
#include "nn/gpt.h"
#include "parallel/communicator.h"
#include "train/checkpoint.h"
#include "train/checkpoint_layout.h"
#include "train/zero_gradients.h"
#include "train/config.h"
#include "train/interval_log.h"
#include "train/loss_scaler.h"
#include "train/optimizer.h"
#include "train/parallel_setup.h"

namespace mt::train {

class Teacher;
class MetricsFile;
class TensorboardWriter;

struct TrainSummary {
  int64_t iterations = 0;       // the last completed iteration
  double last_loss = 0;         // mean training loss of the last iteration
  double last_valid_loss = -1;  // of the last evaluation (-1: none)
  std::string last_checkpoint;  // folder of the last checkpoint written
  bool interrupted = false;     // stopped by a signal or the time limit
};

struct TrainerOptions {
  bool quiet = false;            // no stdout (tests)
  bool handle_signals = true;    // SIGTERM/SIGINT -> checkpoint and stop
  int64_t stop_after_iters = 0;  // stop (with a checkpoint) after this many iterations of this run; 0 = no
  // Random tokens instead of the dataset (`moetrain bench train`: no data files, no validation,
  // no metrics, no checkpoints); each data-parallel rank draws its own.
  bool synthetic_data = false;
  // The processes of the job: parallel::world() by default; a one-rank communicator runs this
  // process alone under mpirun (bench train's single-process reference).
  parallel::Communicator* world = nullptr;
};

// Why the loop stops after this iteration (every rank decides the same).
struct StopDecision {
  bool stop = false;
  int signal = 0;        // SIGTERM/SIGINT seen by any rank
  bool time_up = false;  // exit_duration_in_mins
  bool exit_interval = false;
  bool interrupted() const { return signal != 0 || time_up; }
};

class Trainer {
 public:
  Trainer(const TrainConfig& cfg, const TrainerOptions& options = {});
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Trains from the resumed iteration to train_iters (or a stop), logging, evaluating and saving.
  TrainSummary run();

  // The phases, in the order run() calls them.
  StepResult train_step();
  void log_interval();
  double evaluate();  // -1 when there is no validation split
  void run_zero_shot_tasks();
  void save();
  StopDecision stop_decision();

  // The run's state and parts (tests, bench).
  const TrainState& state() const { return state_; }
  int64_t train_iters() const { return train_iters_; }
  // train_iters reached, or (with train_tokens) the tokens consumed
  bool complete() const {
    return state_.iteration >= train_iters_ || (train_tokens_ > 0 && state_.consumed_tokens >= train_tokens_);
  }
  nn::GptModel& model() { return *model_; }
  double flops_per_token() const { return flops_per_token_; }
  int64_t tokens_per_iteration() const { return tokens_per_iter_; }

 private:
  // printf on rank 0 unless quiet
  template <typename... Args>
  void say(const char* fmt, Args... args) const {
    if (options_.quiet || !lead_) return;
    std::printf(fmt, args...);
    std::fflush(stdout);
  }
  void clear_progress_bar() const;
  void resume();
  void check_schedule_against_checkpoint();
  void prepare_save_folder();
  void load_teacher();
  void build_data();
  data::MicroBatch next_micro_batch();
  void finish_distillation_if_due();
  void record(const nlohmann::json& line);

  TrainConfig cfg_;
  TrainerOptions options_;
  parallel::Communicator& world_;
  ParallelSetup setup_;
  bool lead_;  // rank 0: prints, writes metrics and checkpoints
  bool tty_;   // a live progress bar (a terminal of a single process)
  CheckpointLayout checkpoint_parts_;
  data::Gpt2Tokenizer tokenizer_;
  int64_t n_params_ = 0;
  nn::GptConfig model_config_;
  std::unique_ptr<nn::GptModel> model_;
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<ZeroGradientReducer> zero_reducer_;  // ZeRO 2: gradients reduced into shards
  int64_t global_batch_ = 0, accumulation_ = 0, tokens_per_iter_ = 0, train_iters_ = 0, train_tokens_ = 0;
  std::unique_ptr<LrSchedule> schedule_;
  DType compute_;                     // the GEMMs' operand dtype (precision)
  std::optional<LossScaler> scaler_;  // fp16 only
  TrainState state_;
  std::string resume_from_;
  std::unique_ptr<Teacher> teacher_;
  std::array<std::shared_ptr<const data::SampleDataset>, 3> datasets_;
  data::LoaderOptions loader_options_;
  std::unique_ptr<data::GptLoader> loader_;
  std::string metrics_path_;
  std::unique_ptr<MetricsFile> metrics_;
  std::unique_ptr<TensorboardWriter> tensorboard_;  // rank 0, with tensorboard_dir
  double flops_per_token_ = 0, peak_tflops_ = 0;
  int64_t evals_done_ = 0;
  std::string config_yaml_;
  int64_t saved_at_ = -1;
  double start_seconds_ = 0;
  int64_t start_iteration_ = 0;
  int64_t last_step_tokens_ = 0;
  TrainSummary summary_;
  IntervalLog interval_;
};

TrainSummary run_training(const TrainConfig& cfg, const TrainerOptions& options = {});

}  // namespace mt::train
