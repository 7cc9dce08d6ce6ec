#include "toolkit/trace.h"

#include <nlohmann/json.hpp>

#include "autograd/tape.h"
#include "data/gpt2_tokenizer.h"
#include "moe/moe_trace.h"
#include "runtime/random.h"
#include "train/checkpoint.h"
#include "train/model_config.h"

namespace mt::toolkit {
using namespace train;  // the configuration, model and checkpoint helpers the tools drive
namespace {

nlohmann::json tensor_json(const Tensor& t) {
  return {{"shape", t.shape()}, {"data", t.to_double_vector()}};
}

}  // namespace

std::string trace_moe_layer(const TrainConfig& cfg, const TraceOptions& options) {
  std::vector<int64_t> experts = cfg.experts_per_layer();
  std::string moe_layers;
  for (size_t l = 0; l < experts.size(); ++l)
    if (experts[l] > 1) {
      if (!moe_layers.empty()) moe_layers += ", ";
      moe_layers += std::to_string(l + 1);
    }
  MT_CHECK(!moe_layers.empty(), "trace: this configuration has no MoE layer (num_experts 1); set num_experts");
  MT_CHECK(options.layer >= 1 && options.layer <= int64_t(experts.size()) && experts[size_t(options.layer - 1)] > 1,
           "trace: --layer ", options.layer, " is not an MoE layer; the MoE layers of this model are ", moe_layers,
           " (1-based, as in the training log)");

  data::Gpt2Tokenizer tokenizer = config_tokenizer(cfg);
  nn::GptConfig mc = model_config(cfg, tokenizer.vocab_size());
  mc.device = Device::cpu();
  nn::GptModel model(mc, feed_forward_factory(cfg, mc), cfg.moe_loss_coeff);
  std::string weights = "initialisation (seed " + std::to_string(cfg.seed) + ")";
  if (!cfg.load.empty()) {
    std::string dir = resolve_checkpoint(cfg.load);
    MT_CHECK(!dir.empty(), "trace: load '", cfg.load, "' holds no checkpoint");
    load_checkpoint(dir, model.parameters(), nullptr);
    weights = dir;
  }

  // The micro-batch: one sequence of the text's tokens (or random ones), next-token labels.
  std::vector<int32_t> ids;
  if (!options.text.empty()) {
    ids = tokenizer.encode(options.text);
    MT_CHECK(ids.size() >= 2, "trace: --text needs at least two tokens");
  } else {
    Tensor r = rand_uniform({cfg.seq_length + 1}, DType::F64, rng_key(options.seed, 0, 3, 0), 0,
                            double(tokenizer.vocab_size()));
    for (double v : r.to_double_vector()) ids.push_back(int32_t(v));
  }
  if (int64_t(ids.size()) > cfg.max_positions() + 1) ids.resize(size_t(cfg.max_positions() + 1));
  int64_t t = int64_t(ids.size()) - 1;
  Tensor tokens = Tensor::from_vector(std::vector<int32_t>(ids.begin(), ids.end() - 1), {1, t});
  Tensor labels = Tensor::from_vector(std::vector<int32_t>(ids.begin() + 1, ids.end()), {1, t});

  int64_t layer = options.layer - 1;
  moe::MoeTraceRecorder rec(layer);
  current_tape().clear();
  nn::LossParts parts;
  {
    moe::MoeProbeScope scope(&rec);
    parts = model.loss_parts(tokens, labels, Tensor(), {options.training, 0});
  }
  current_tape().backward(parts.total);
  MT_CHECK(rec.seen(), "trace: layer ", options.layer, " did not run");

  std::string prefix = "layers." + std::to_string(layer) + ".mlp.";
  std::vector<std::pair<std::string, Tensor>> weight_grads;
  for (const Parameter& p : model.parameters().all())
    if (p.name.rfind(prefix, 0) == 0 && p.var.grad().defined()) weight_grads.push_back({p.name, p.var.grad()});

  if (options.json) {
    nlohmann::json j;
    const moe::Routing& r = rec.routing();
    j["layer"] = options.layer;
    j["weights"] = weights;
    j["tokens"] = std::vector<int32_t>(ids.begin(), ids.end() - 1);
    j["loss"] = {{"total", parts.total.value().item()}, {"lm", parts.lm_loss}, {"aux_sum", parts.aux_loss}};
    j["routing"] = {{"tokens", r.tokens},      {"experts", r.experts}, {"k", r.k},
                    {"capacity", r.capacity},  {"expert", r.expert},   {"slot", r.slot},
                    {"assigned", r.assigned},  {"kept", r.kept},       {"aux_fraction", r.aux_fraction},
                    {"aux_scale", r.aux_scale}};
    for (const auto& [name, v] : rec.values()) j["forward"][name] = tensor_json(v);
    for (const auto& [name, g] : rec.grads()) j["backward"][name] = tensor_json(g);
    for (const auto& [name, g] : weight_grads) j["weight_grads"][name] = tensor_json(g);
    return j.dump() + "\n";
  }
  char title[512];
  std::snprintf(title, sizeof title,
                "MoE layer %lld of %lld (%s), weights: %s; %s mode; loss %.4f (lm %.4f + %g x l_aux sum %.4f)",
                (long long)options.layer, (long long)cfg.num_layers, cfg.mlp_type.c_str(), weights.c_str(),
                options.training ? "training" : "evaluation", parts.total.value().item(), parts.lm_loss,
                cfg.moe_loss_coeff, parts.aux_loss);
  std::string out = moe::format_moe_trace(rec, title, options.tokens, weight_grads);
  if (!options.text.empty()) {
    std::string words = "\ntokens:";
    for (int64_t i = 0; i < std::min<int64_t>(options.tokens, t); ++i)
      words += " [" + std::to_string(i) + "] '" + tokenizer.decode({ids[size_t(i)]}) + "'";
    out.insert(out.find('\n') + 1, words.substr(1) + "\n");
  }
  return out;
}

}  // namespace mt::toolkit
