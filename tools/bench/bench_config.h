// The model the train and eval benchmarks measure: 6 layers, hidden 256, 8 heads, seq 256,
// micro-batch 8, no dropout, then --config X.yaml and --key value overrides on top.
#pragma once

#include <string>
#include <vector>

#include "train/config.h"

namespace mt::bench {

train::TrainConfig bench_model_config(const std::string& config_path, const std::vector<std::string>& overrides);

}  // namespace mt::bench
