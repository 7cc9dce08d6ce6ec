// Mixture-of-Students (DeepSpeed-MoE's MoS) and plain knowledge distillation: a frozen teacher,
// loaded from `load_teacher` and built from the *_teacher keys (train/config.h, teacher_config),
// runs in evaluation mode (eval capacity factor, no gate noise, no dropout) without gradients or
// a tape on the student's tokens, and its logits feed the KD term (nn/kd_loss.h). It costs its
// weights (no gradient or optimizer buffers) and one micro-batch of logits. Staged KD: from
// iteration kd_stop_step on the term is off and the teacher is freed. docs/mos.md.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/gpt.h"
#include "train/config.h"
#include "train/parallel_setup.h"

namespace mt::train {

// Whether the step numbered `iteration` (1-based) trains with the KD term.
inline bool kd_active(const TrainConfig& cfg, int64_t iteration) {
  return cfg.distills() && (cfg.kd_stop_step == 0 || iteration < cfg.kd_stop_step);
}

class Teacher {
 public:
  // Builds the teacher of `student` for a vocabulary of vocab_size and loads its weights; errors
  // name the checkpoint and, for a tensor that does not fit, both shapes and the teacher keys.
  Teacher(const TrainConfig& student, int64_t vocab_size, const ParallelSetup& setup, int rank);
  const nn::GptModel& model() const { return *model_; }
  const std::string& checkpoint() const { return checkpoint_; }
  // Teacher logits for tokens [B,T]: this rank's vocabulary columns, [B,T,V/tp] (no tape).
  Tensor logits(const Tensor& tokens) const;

 private:
  std::unique_ptr<nn::GptModel> model_;
  std::string checkpoint_;
};

// student_init_from_teacher_layers: student layer i takes the weights of teacher layer
// layers[i]; the embeddings and the final LayerNorm come from the teacher too. Every copied
// tensor must have the teacher's shape (the error names both).
void init_student_from_teacher(ParameterRegistry& student, const ParameterRegistry& teacher,
                               const std::vector<std::string>& layers);

}  // namespace mt::train
