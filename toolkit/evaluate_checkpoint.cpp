#include "toolkit/evaluate_checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "autograd/autocast.h"
#include "data/gpt2_tokenizer.h"
#include "runtime/file_util.h"
#include "runtime/text_util.h"
#include "train/checkpoint.h"
#include "train/generate.h"
#include "train/config.h"

namespace mt::toolkit {
namespace {

// The checkpoint's value of each shape flag (max-position-embeddings: the positions the model has).
int64_t shape_value(const train::TrainConfig& cfg, const std::string& flag) {
  if (flag == "num-layers") return cfg.num_layers;
  if (flag == "hidden-size") return cfg.hidden_size;
  if (flag == "num-attention-heads") return cfg.num_attention_heads;
  if (flag == "seq-length") return cfg.seq_length;
  if (flag == "max-position-embeddings") return cfg.max_positions();
  throw Error("--" + flag + " is not a model shape flag (they are: " + join(model_shape_flags(), ", ") + ")");
}

// Each shape flag given with a value other than -1 must be the checkpoint's (evaluate.py takes
// the shape from the checkpoint whatever they say; a value that disagrees is most likely a mistake).
void check_shape(const train::TrainConfig& cfg, const std::string& dir, const CheckpointEvalOptions& load) {
  for (const auto& [flag, value] : load.shape) {
    int64_t have = shape_value(cfg, flag);
    std::string key = flag;
    std::replace(key.begin(), key.end(), '-', '_');
    MT_CHECK(value == -1 || value == have, "--", flag, " ", value, " disagrees with the checkpoint ", dir, ", whose ",
             key, " is ", have, ": pass --", flag, " -1 (the shape is then the checkpoint's) or leave it out");
  }
}

// The GEMMs' dtype for `precision` (checkpoint: the one the model trained in).
DType eval_dtype(const std::string& precision, const train::TrainConfig& cfg) {
  if (precision == "fp32") return DType::F32;
  if (precision == "bf16") return DType::BF16;
  if (precision == "fp16") return DType::F16;
  if (precision == "checkpoint") return cfg.compute_dtype();
  throw Error("--precision must be one of " + join(eval_precisions(), ", ") + ", got '" + precision + "'");
}

std::string precision_name(DType t) {
  return t == DType::BF16 ? "bf16" : t == DType::F16 ? "fp16" : "fp32";
}

}  // namespace

const std::vector<std::string>& model_shape_flags() {
  static const std::vector<std::string> flags = {"num-layers", "hidden-size", "num-attention-heads", "seq-length",
                                                 "max-position-embeddings"};
  return flags;
}

const std::vector<std::string>& eval_precisions() {
  static const std::vector<std::string> names = {"fp32", "bf16", "fp16", "checkpoint"};
  return names;
}

eval::CheckpointResults evaluate_checkpoint(const std::string& checkpoint, const eval::EvalOptions& options,
                                            const CheckpointEvalOptions& load) {
  DType dtype = DType::F32;
  // the model as it trained, dropless when asked, its tokenizer the command line's where given
  train::LoadedModel m = train::load_model_for_inference(
      checkpoint, options.dropless_moe, [&](const std::string& dir, train::TrainConfig& cfg) {
        check_shape(cfg, dir, load);
        dtype = eval_dtype(load.precision, cfg);
        if (options.verbose && (!options.ranks || options.ranks->rank() == 0))
          std::fprintf(stderr, "evaluating %s (%s)\n", dir.c_str(), precision_name(dtype).c_str());
        if (!load.vocab_file.empty()) cfg.vocab_file = load.vocab_file;
        if (!load.merge_file.empty()) cfg.merge_file = load.merge_file;
      });
  const std::string& dir = m.checkpoint;
  const train::TrainConfig& cfg = m.config;
  std::unique_ptr<nn::GptModel>& model = m.model;
  data::Gpt2Tokenizer tok(m.vocab_file, m.merge_file);

  eval::CheckpointResults r;
  r.checkpoint = dir;
  r.config_yaml = read_file(train::checkpoint_config_path(dir));
  r.precision = precision_name(dtype);
  try {
    nlohmann::json meta = nlohmann::json::parse(std::ifstream(std::filesystem::path(dir) / "meta.json"));
    r.iteration = meta.value("iteration", int64_t(0));
  } catch (const nlohmann::json::exception&) {
  }
  eval::EvalOptions opt = options;
  if (load.micro_batch_size > 0) opt.batch_tokens = load.micro_batch_size * cfg.seq_length;
  r.batch_tokens = opt.batch_tokens;
  ag::Autocast autocast(dtype, &model->parameters());  // fp32: changes nothing
  r.tasks = eval::evaluate_model(*model, tok, opt);
  return r;
}

}  // namespace mt::toolkit
