// Shared pieces of the training tests: a tiny run on the Megatron sample data, temporary
// folders, the logged losses, and quiet trainer options.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "test_folders.h"
#include "train/config.h"
#include "train/trainer.h"

namespace trainfix {
using mt::train::TrainConfig;
using mt::train::TrainerOptions;
namespace fs = std::filesystem;

inline const std::string kSample = MOETRAIN_SOURCE_DIR "/tests/data/megatron_sample/my-gpt2_text_document";

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline TrainConfig tiny_run(const fs::path& dir) {
  TrainConfig c;
  c.num_layers = 2;
  c.hidden_size = 16;
  c.num_attention_heads = 2;
  c.seq_length = 16;
  c.micro_batch_size = 2;
  c.global_batch_size = 4;
  c.train_iters = 20;
  c.lr = 1e-2;
  c.min_lr = 1e-3;
  c.lr_warmup_iters = 3;
  c.lr_decay_style = "cosine";
  c.hidden_dropout = 0.1;
  c.attention_dropout = 0.1;
  c.weight_decay = 0.1;
  c.data_path = {kSample};
  c.split = "949,50,1";
  c.log_interval = 1;
  c.eval_interval = 5;
  c.eval_iters = 2;
  c.save = (dir / "ckpt").string();
  c.data_cache_path = (dir / "index-cache").string();  // never write into the source tree
  c.metrics_file = (dir / "metrics.jsonl").string();
  return c;
}

// The value of `key` on every training line of a metrics file that has it.
inline std::vector<double> train_values(const fs::path& metrics, const std::string& key) {
  std::vector<double> out;
  std::istringstream in(slurp(metrics));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["split"] == "train" && j.contains(key)) out.push_back(j[key].get<double>());
  }
  return out;
}

inline std::vector<double> train_losses(const std::string& metrics) {
  return train_values(metrics, "lm_loss");
}

// An empty folder of this test process (the process id keeps concurrent test runs apart), removed
// when the process exits (tests/test_folders.h).
inline fs::path fresh_dir(const std::string& name) {
  return testfolders::fresh_temp_dir("moetrain_train_" + name);
}

// No output and no signal handlers: tests run the trainer as a library.
inline TrainerOptions quiet_options() {
  TrainerOptions o;
  o.quiet = true;
  o.handle_signals = false;
  return o;
}

}  // namespace trainfix
