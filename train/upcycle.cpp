#include "train/upcycle.h"

#include <filesystem>
#include <regex>

#include "train/checkpoint.h"
#include "train/safetensors.h"

namespace mt::train {

void check_upcycling_config(const TrainConfig& moe) {
  MT_CHECK(moe.is_moe(), "upcycling makes an MoE model: set num_experts (e.g. --num-experts 8)");
  MT_CHECK(moe.moe_ffn_size() == moe.ffn_size(),
           "upcycling copies the dense MLP into every expert: "
           "moe_ffn_hidden_size (",
           moe.moe_ffn_hidden_size, ") must be 0 or equal ffn_hidden_size (", moe.ffn_size(), ")");
  MT_CHECK(moe.moe_shared_expert_intermediate_size == 0,
           "upcycling copies the dense MLP into every expert; a shared expert (moe_shared_expert_intermediate_size) "
           "would add a second MLP the dense model does not have: set it to 0");
}

UpcycleCounts upcycle_from_dense(const std::string& dense_dir, ParameterRegistry& params,
                                 const CheckpointLayout& layout) {
  std::string dir = resolve_checkpoint(dense_dir);
  MT_CHECK(!dir.empty(), "upcycle: '", dense_dir, "' holds no checkpoint yet");
  std::string path = (std::filesystem::path(dir) / "model.safetensors").string();
  SafetensorsFile dense = read_safetensors(path);
  // an expert's or the residual MLP's tensor -> the dense MLP's of the same layer
  static const std::regex expert(
      R"(^(layers\.\d+\.mlp\.)(experts\.\d+\.|mlp\.)(dense_(h_to_4h|4h_to_h)\.(weight|bias))$)");
  static const std::regex fresh(R"(^layers\.\d+\.mlp\.(gate|coefficient)\.)");
  UpcycleCounts n;
  for (const Parameter& p : params.all()) {
    std::string source = p.name;
    std::smatch m;
    if (std::regex_match(p.name, m, expert)) source = m[1].str() + m[3].str();
    auto it = dense.tensors.find(source);
    if (it == dense.tensors.end()) {
      MT_CHECK(std::regex_search(p.name, fresh), "upcycle: the dense checkpoint '", dir, "' has no tensor '", source,
               "' for '", p.name, "' (is it a checkpoint of the same model without experts?)");
      ++n.initialised;
      continue;
    }
    Shape want = global_shape(p, layout);
    MT_CHECK(it->second.shape() == want && it->second.dtype() == p.var.dtype(), "upcycle: '", path, "': tensor '",
             source, "' is ", it->second.str(), " but '", p.name, "' is ", dtype_name(p.var.dtype()), shape_str(want),
             " (the MoE configuration must keep the dense model's sizes)");
    Tensor target = p.var.value();
    target.copy_from(local_part(p, it->second, layout));
    ++n.copied;
  }
  return n;
}

}  // namespace mt::train
