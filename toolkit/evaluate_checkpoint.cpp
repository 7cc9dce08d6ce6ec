#include "toolkit/evaluate_checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/file_util.h"
#include "train/checkpoint.h"
#include "train/generate.h"

namespace mt::toolkit {

eval::CheckpointResults evaluate_checkpoint(const std::string& checkpoint, const eval::EvalOptions& options) {
  std::string dir = train::resolve_checkpoint(checkpoint);
  MT_CHECK(!dir.empty(), "no checkpoint in '", checkpoint,
           "' (expected a checkpoint folder or a save folder with a 'latest' file)");
  if (options.verbose && (!options.ranks || options.ranks->rank() == 0))
    std::fprintf(stderr, "evaluating %s\n", dir.c_str());
  train::LoadedModel m = train::load_model_for_inference(dir, options.dropless_moe);
  data::Gpt2Tokenizer tok(m.vocab_file, m.merge_file);
  eval::CheckpointResults r;
  r.checkpoint = dir;
  r.config_yaml = read_file(train::checkpoint_config_path(dir));
  try {
    nlohmann::json meta = nlohmann::json::parse(std::ifstream(std::filesystem::path(dir) / "meta.json"));
    r.iteration = meta.value("iteration", int64_t(0));
  } catch (const nlohmann::json::exception&) {
  }
  r.tasks = eval::evaluate_model(*m.model, tok, options);
  return r;
}

}  // namespace mt::toolkit
