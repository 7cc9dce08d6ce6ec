// `moetrain eval`'s driver: a checkpoint (a folder, or a save folder's latest) rebuilt from its
// config.yaml with its weights, checked against the model shape the command line names, and its
// zero-shot tasks run (eval/harness.h) in the precision asked for.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "eval/harness.h"

namespace mt::toolkit {

// What the command line sets per checkpoint (Megatron-DeepSpeed's evaluate.py flags; docs/eval.md).
struct CheckpointEvalOptions {
  std::string precision = "fp32";      // the GEMMs': fp32 | bf16 | fp16 | checkpoint (the training's)
  int64_t micro_batch_size = 0;        // > 0: batch_tokens = micro_batch_size x the checkpoint's seq_length
  std::string vocab_file, merge_file;  // non-empty: used instead of the checkpoint's
  // (flag, value) of the shape flags below: -1 takes the checkpoint's, any other value must equal it
  std::vector<std::pair<std::string, int64_t>> shape;
};

// The shape flags: num-layers, hidden-size, num-attention-heads, seq-length, max-position-embeddings.
const std::vector<std::string>& model_shape_flags();
// The precisions `precision` may name.
const std::vector<std::string>& eval_precisions();

eval::CheckpointResults evaluate_checkpoint(const std::string& checkpoint, const eval::EvalOptions& options,
                                            const CheckpointEvalOptions& load = {});

}  // namespace mt::toolkit
