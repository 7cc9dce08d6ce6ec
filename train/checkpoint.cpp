#include "train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "runtime/file_util.h"
#include "train/checkpoint_folder.h"
#include "train/safetensors.h"

namespace mt::train {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFormat = "moetrain-checkpoint-v1";

std::string iteration_name(int64_t iteration) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "iter_%07lld", (long long)iteration);
  return buf;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)v);
  return buf;
}

}  // namespace

std::string save_checkpoint(const std::string& save_dir, const TrainState& state, const ParameterRegistry& params,
                            AdamW* optimizer, const std::string& config_yaml, int64_t keep_last_n,
                            const CheckpointLayout& layout) {
  // Collective part first: the writer receives every global tensor.
  std::vector<NamedTensor> model =
      gather_global_tensors(params, layout, "", [&](ParamGroup g) { return params.flat_values(g); });
  std::vector<NamedTensor> opt;
  if (optimizer)
    for (auto [prefix, moment] :
         {std::pair{"exp_avg.", AdamW::Moment::ExpAvg}, std::pair{"exp_avg_sq.", AdamW::Moment::ExpAvgSq}}) {
      // whole (under ZeRO gathered from the chunks: collective, every rank in this order)
      Tensor whole[kNumParamGroups];
      for (int g = 0; g < kNumParamGroups; ++g)
        if (params.flat_values(ParamGroup(g)).defined()) whole[g] = optimizer->full_moment(moment, ParamGroup(g));
      for (NamedTensor& t : gather_global_tensors(params, layout, prefix, [&](ParamGroup g) { return whole[int(g)]; }))
        opt.push_back(std::move(t));
    }
  if (!layout.writer) return "";

  fs::path root(save_dir), final_dir = root / iteration_name(state.iteration);
  fs::path tmp = root / (iteration_name(state.iteration) + temporary_suffix());
  fs::create_directories(root);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    nlohmann::json meta = {
        {"format", kFormat},
        {"iteration", state.iteration},
        {"consumed_samples", state.consumed_samples},
        {"consumed_tokens", state.consumed_tokens},
        {"optimizer_steps", optimizer ? optimizer->steps() : 0},
        {"saved_at", std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()}};
    if (state.loss_scale.scale > 0)
      meta["loss_scale"] = {{"scale", state.loss_scale.scale},
                            {"growth_tracker", state.loss_scale.growth_tracker},
                            {"hysteresis_tracker", state.loss_scale.hysteresis_tracker}};
    if (state.lr_schedule) {
      const LrScheduleValues& v = *state.lr_schedule;
      meta["lr_schedule"] = {{"max_lr", v.max_lr}, {"min_lr", v.min_lr}, {"warmup", v.warmup},
                             {"decay", v.decay},   {"style", v.style},   {"by_tokens", v.by_tokens}};
    }
    for (const auto& [layer, bias] : state.expert_bias) meta["expert_bias"][std::to_string(layer)] = bias;
    meta["files"]["model.safetensors"] = hex64(write_safetensors((tmp / "model.safetensors").string(), model));
    if (optimizer)
      meta["files"]["optimizer.safetensors"] = hex64(write_safetensors((tmp / "optimizer.safetensors").string(), opt));
    write_file_atomically((tmp / "config.yaml").string(), config_yaml);
    write_file_atomically((tmp / "meta.json").string(), meta.dump(2) + "\n");
    fs::remove_all(final_dir);  // a re-save of the same iteration replaces it
    fs::rename(tmp, final_dir);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  write_file_atomically((root / "latest").string(), final_dir.filename().string() + "\n");
  apply_retention(root.string(), final_dir.string(), keep_last_n);
  return final_dir.string();
}

std::string resolve_checkpoint(const std::string& path) {
  return find_checkpoint(path).checkpoint;
}

std::string checkpoint_config_path(const std::string& dir) {
  return (fs::path(dir) / "config.yaml").string();
}

TrainState load_checkpoint(const std::string& dir, ParameterRegistry& params, AdamW* optimizer,
                           const CheckpointLayout& layout) {
  fs::path root(dir);
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(read_file((root / "meta.json").string()));
  } catch (const nlohmann::json::exception& e) {
    throw Error("checkpoint '" + dir + "': meta.json is corrupted: " + e.what());
  }
  MT_CHECK(meta.value("format", "") == kFormat, "checkpoint '", dir, "': meta.json has format '",
           meta.value("format", ""), "', expected ", kFormat);
  auto load_file = [&](const std::string& name) {
    std::string path = (root / name).string();
    SafetensorsFile f = read_safetensors(path);
    std::string want = meta["files"].value(name, "");
    MT_CHECK(want.empty() || hex64(f.checksum) == want, "checkpoint file '", path,
             "' is corrupted: its checksum does not match the one in meta.json");
    return f;
  };
  // Copies p's part of global tensor prefix + p.name into `target` (a view of p's shape).
  auto take = [&](SafetensorsFile& f, const std::string& file, const std::string& prefix, const Parameter& p,
                  Tensor target) {
    std::string name = prefix + p.name;
    auto it = f.tensors.find(name);
    MT_CHECK(it != f.tensors.end(), "checkpoint file '", (root / file).string(), "' has no tensor '", name,
             "' (the model was built with a different configuration?)");
    Shape want = global_shape(p, layout);
    MT_CHECK(it->second.shape() == want && it->second.dtype() == p.var.dtype(), "checkpoint file '",
             (root / file).string(), "': tensor '", name, "' is ", it->second.str(), " but the model expects ",
             dtype_name(p.var.dtype()), shape_str(want));
    target.copy_from(local_part(p, it->second, layout));
  };
  // Every tensor in a file must belong to the model (this rank's part or another rank's).
  auto check_no_strangers = [&](const SafetensorsFile& f, const std::string& file,
                                const std::vector<std::string>& prefixes) {
    std::set<std::string> known;
    for (const std::string& prefix : prefixes) known.merge(global_tensor_names(params, layout, prefix));
    for (const auto& [name, t] : f.tensors)
      MT_CHECK(known.count(name), "checkpoint file '", (root / file).string(), "' holds tensor '", name,
               "' that the model does not have");
  };
  SafetensorsFile model = load_file("model.safetensors");
  for (const Parameter& p : params.all()) take(model, "model.safetensors", "", p, p.var.value());
  check_no_strangers(model, "model.safetensors", {""});
  if (optimizer) {
    MT_CHECK(fs::exists(root / "optimizer.safetensors"), "checkpoint '", dir, "' has no optimizer state");
    SafetensorsFile opt = load_file("optimizer.safetensors");
    // each moment whole (the registry's flat layout), then handed to AdamW (under ZeRO it keeps its chunk)
    for (auto [prefix, moment] :
         {std::pair{"exp_avg.", AdamW::Moment::ExpAvg}, std::pair{"exp_avg_sq.", AdamW::Moment::ExpAvgSq}})
      for (int g = 0; g < kNumParamGroups; ++g) {
        const Tensor& values = params.flat_values(ParamGroup(g));
        if (!values.defined()) continue;
        Tensor whole = Tensor::zeros(values.shape(), values.dtype(), values.device());
        for (const Parameter& p : params.all())
          if (int(p.group()) == g)
            take(opt, "optimizer.safetensors", prefix, p,
                 whole.narrow(p.offset, p.var.value().numel()).reshape(p.var.shape()));
        optimizer->set_full_moment(moment, ParamGroup(g), whole);
      }
    check_no_strangers(opt, "optimizer.safetensors", {"exp_avg.", "exp_avg_sq."});
    optimizer->set_steps(meta.value("optimizer_steps", int64_t(0)));
  }
  TrainState s;
  s.iteration = meta.value("iteration", int64_t(0));
  s.consumed_samples = meta.value("consumed_samples", int64_t(0));
  s.consumed_tokens = meta.value("consumed_tokens", int64_t(0));
  if (meta.contains("lr_schedule")) {
    const nlohmann::json& ls = meta["lr_schedule"];
    s.lr_schedule = LrScheduleValues{ls.value("max_lr", 0.0), ls.value("min_lr", 0.0), ls.value("warmup", 0.0),
                                     ls.value("decay", 0.0),  ls.value("style", ""),   ls.value("by_tokens", false)};
  }
  if (meta.contains("loss_scale")) {
    const nlohmann::json& ls = meta["loss_scale"];
    s.loss_scale = {ls.value("scale", 0.0), ls.value("growth_tracker", int64_t(0)),
                    ls.value("hysteresis_tracker", int64_t(0))};
  }
  if (meta.contains("expert_bias"))
    for (const auto& [layer, bias] : meta["expert_bias"].items())
      s.expert_bias[std::stoll(layer)] = bias.get<std::vector<double>>();
  return s;
}

}  // namespace mt::train
