// `moetrain eval`'s driver: a checkpoint (a folder, or a save folder's latest) loaded for inference
// (train/generate.h) and its zero-shot tasks run (eval/harness.h).
#pragma once

#include <string>

#include "eval/harness.h"

namespace mt::toolkit {

eval::CheckpointResults evaluate_checkpoint(const std::string& checkpoint, const eval::EvalOptions& options);

}  // namespace mt::toolkit
