#include "toolkit/inspect.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/gpt2_tokenizer.h"
#include "train/checkpoint.h"
#include "train/model_config.h"

namespace mt::toolkit {
using namespace train;  // the configuration, model and checkpoint helpers the tools drive
namespace fs = std::filesystem;

namespace {
std::string fmt(const char* f, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, f, args...);
  return buf;
}
}  // namespace

std::string inspect_checkpoint(const std::string& path) {
  std::string dir = resolve_checkpoint(path);
  MT_CHECK(!dir.empty(), "no checkpoint in '", path, "'");
  TrainConfig cfg = load_config_file(checkpoint_config_path(dir));
  data::Gpt2Tokenizer tok = config_tokenizer(cfg);
  std::unique_ptr<nn::GptModel> model = make_model(cfg, tok.vocab_size());  // shapes only: weights not loaded
  std::ostringstream out;
  out << "checkpoint " << dir << "\n\n";
  out << fmt("model: %lld layers, hidden %lld, %lld heads, ffn %lld, seq %lld, vocab %lld (padded)\n",
             (long long)cfg.num_layers, (long long)cfg.hidden_size, (long long)cfg.num_attention_heads,
             (long long)cfg.ffn_size(), (long long)cfg.seq_length, (long long)model->config().padded_vocab_size);
  // Parameters per (layer, expert) to count what a token actually uses.
  std::map<int, std::map<int, int64_t>> expert_params;
  int64_t total = 0, expert_total = 0;
  for (const Parameter& p : model->parameters().all()) {
    int64_t n = p.var.value().numel();
    total += n;
    if (p.tags.expert) {
      expert_params[p.tags.expert->layer][p.tags.expert->expert] += n;
      expert_total += n;
    }
  }
  std::vector<int64_t> experts = cfg.experts_per_layer();
  out << "\nlayer  feed-forward\n";
  int64_t active = total - expert_total;
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    int64_t e = experts[size_t(l)];
    if (e <= 1) {
      out << fmt("%5lld  dense MLP\n", (long long)l + 1);
      continue;
    }
    int64_t per_expert = expert_params[int(l)].empty() ? 0 : expert_params[int(l)].begin()->second;
    int64_t k = std::min<int64_t>(cfg.topk, e);
    active += k * per_expert;
    out << fmt("%5lld  MoE: %lld experts (%.2fM parameters each), top-%lld%s\n", (long long)l + 1, (long long)e,
               double(per_expert) / 1e6, (long long)k,
               cfg.mlp_type == "residual" ? ", residual (dense MLP + expert)" : "");
  }
  out << fmt("\nparameters: %.2fM total, %.2fM active per token (%.2fM in experts)\n", double(total) / 1e6,
             double(active) / 1e6, double(expert_total) / 1e6);

  // Expert loads of the last logged training step.
  fs::path metrics = fs::path(dir).parent_path() / "metrics.jsonl";
  std::ifstream in(metrics);
  nlohmann::json last;
  for (std::string line; std::getline(in, line);) {
    try {
      nlohmann::json j = nlohmann::json::parse(line);
      if (j.contains("moe_layers")) last = j;
    } catch (const nlohmann::json::exception&) {
    }
  }
  if (!last.is_null()) {
    out << fmt("\nexpert loads at iteration %lld (%s): share of the assignments per expert, in %%\n",
               (long long)last["iteration"].get<int64_t>(), metrics.string().c_str());
    for (auto& layer : last["moe_layers"]) {
      std::vector<int64_t> counts = layer["expert_counts"].get<std::vector<int64_t>>();
      int64_t sum = 0;
      for (int64_t c : counts) sum += c;
      out << fmt("  layer %2lld |", (long long)layer["layer"].get<int64_t>() + 1);
      for (int64_t c : counts) out << fmt(" %5.1f", sum ? 100.0 * double(c) / double(sum) : 0.0);
      out << fmt(" | dropped %.1f%%, aux %.3f, entropy %.3f\n", 100.0 * layer["dropped"].get<double>(),
                 layer["aux_loss"].get<double>(), layer["entropy"].get<double>());
    }
  } else if (cfg.is_moe()) {
    out << "\n(no expert loads: " << metrics.string() << " has no logged MoE step)\n";
  }
  return out.str();
}

}  // namespace mt::toolkit
