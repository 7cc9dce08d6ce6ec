#include "train/deepspeed_config.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "runtime/error.h"
#include "runtime/file_util.h"

namespace mt::train {
namespace {

using nlohmann::json;

// Reads one JSON file section by section, naming the file and the key in every error.
class DeepspeedJson {
 public:
  explicit DeepspeedJson(std::string path) : path_(std::move(path)) {
    try {
      root_ = json::parse(read_file(path_, "DeepSpeed config"), nullptr, true, /*ignore_comments=*/true);
    } catch (const json::parse_error& e) {
      throw Error("DeepSpeed config '" + path_ + "' is not valid JSON: " + e.what());
    }
    MT_CHECK(root_.is_object(), "DeepSpeed config '", path_, "' must be a JSON object of settings");
  }

  // Throws for a key of `object` (at `where`) that is not in `known`.
  void only(const json& object, const std::string& where, const std::set<std::string>& known) const {
    MT_CHECK(object.is_object(), "DeepSpeed config '", path_, "': ", where.empty() ? "the file" : where,
             " must be a JSON object");
    for (const auto& [key, value] : object.items()) {
      std::string all;
      for (const std::string& k : known) all += (all.empty() ? "" : ", ") + k;
      MT_CHECK(known.count(key), "DeepSpeed config '", path_, "': '", where.empty() ? key : where + "." + key,
               "' is not supported by moetrain (it knows ", all, "; docs/megatron-deepspeed.md says what each does)");
    }
  }
  // A number at `object[key]` (where it is present).
  bool number(const json& object, const std::string& where, const std::string& key, double& out) const {
    if (!object.contains(key)) return false;
    MT_CHECK(object[key].is_number(), "DeepSpeed config '", path_, "': '", where + key, "' must be a number, got ",
             object[key].dump());
    out = object[key].get<double>();
    return true;
  }
  bool integer(const json& object, const std::string& where, const std::string& key, int64_t& out) const {
    double v = 0;
    if (!number(object, where, key, v)) return false;
    MT_CHECK(v == std::floor(v), "DeepSpeed config '", path_, "': '", where + key, "' must be a whole number, got ", v);
    out = int64_t(v);
    return true;
  }
  bool boolean(const json& object, const std::string& where, const std::string& key, bool& out) const {
    if (!object.contains(key)) return false;
    MT_CHECK(object[key].is_boolean(), "DeepSpeed config '", path_, "': '", where + key,
             "' must be true or false, got ", object[key].dump());
    out = object[key].get<bool>();
    return true;
  }
  const json& root() const { return root_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  json root_;
};

// The batch sizes: the JSON's and the flags' must agree; the JSON fills what the flags left unset.
void apply_batch(const DeepspeedJson& ds, TrainConfig& cfg) {
  const json& r = ds.root();
  int64_t train_batch = 0, micro = 0, accumulation = 0;
  if (ds.integer(r, "", "train_batch_size", train_batch)) {
    MT_CHECK(cfg.global_batch_size == 0 || cfg.global_batch_size == train_batch, "global_batch_size ",
             cfg.global_batch_size, " and the DeepSpeed config's train_batch_size ", train_batch, " ('", ds.path(),
             "') disagree; make them equal");
    cfg.global_batch_size = train_batch;
  }
  if (ds.integer(r, "", "train_micro_batch_size_per_gpu", micro)) {
    MT_CHECK(cfg.micro_batch_size == micro, "micro_batch_size ", cfg.micro_batch_size,
             " and the DeepSpeed config's train_micro_batch_size_per_gpu ", micro, " ('", ds.path(),
             "') disagree; make them equal");
  }
  if (ds.integer(r, "", "gradient_accumulation_steps", accumulation))
    MT_CHECK(accumulation > 0 && cfg.global_batch_size % (accumulation * cfg.micro_batch_size) == 0,
             "the DeepSpeed config's gradient_accumulation_steps ", accumulation, " ('", ds.path(),
             "') does not divide the global batch ", cfg.global_batch_size, " into micro-batches of ",
             cfg.micro_batch_size);
}

// fp16 {...} and bf16 {...}: the precision and fp16's loss scaling.
void apply_precision(const DeepspeedJson& ds, TrainConfig& cfg) {
  const json& r = ds.root();
  bool fp16 = false, bf16 = false;
  if (r.contains("fp16")) {
    ds.only(r["fp16"], "fp16",
            {"enabled", "loss_scale", "initial_scale_power", "loss_scale_window", "hysteresis", "min_loss_scale",
             "auto_cast"});
    ds.boolean(r["fp16"], "fp16.", "enabled", fp16);
    if (fp16) {
      double scale = 0, power = 0;
      int64_t window = 0, hysteresis = 0;
      if (ds.number(r["fp16"], "fp16.", "loss_scale", scale)) cfg.loss_scale = scale;
      if (ds.number(r["fp16"], "fp16.", "initial_scale_power", power)) cfg.initial_loss_scale = std::pow(2.0, power);
      if (ds.integer(r["fp16"], "fp16.", "loss_scale_window", window)) cfg.loss_scale_window = window;
      if (ds.integer(r["fp16"], "fp16.", "hysteresis", hysteresis)) cfg.hysteresis = hysteresis;
      ds.number(r["fp16"], "fp16.", "min_loss_scale", cfg.min_loss_scale);
      bool auto_cast = false;
      ds.boolean(r["fp16"], "fp16.", "auto_cast", auto_cast);
      MT_CHECK(!auto_cast, "DeepSpeed config '", ds.path(),
               "': fp16.auto_cast is not supported (moetrain casts the GEMM operands itself)");
    }
  }
  if (r.contains("bf16")) {
    ds.only(r["bf16"], "bf16", {"enabled"});
    ds.boolean(r["bf16"], "bf16.", "enabled", bf16);
  }
  MT_CHECK(!(fp16 && bf16), "DeepSpeed config '", ds.path(), "' enables both fp16 and bf16; enable one");
  if (fp16 || bf16) {
    std::string want = fp16 ? "fp16" : "bf16";
    MT_CHECK(cfg.precision == "fp32" || cfg.precision == want, "precision ", cfg.precision,
             " and the DeepSpeed config's ", want, ".enabled ('", ds.path(), "') disagree; keep one");
    cfg.precision = want;
    cfg.fp16 = fp16;
    cfg.bf16 = bf16;
  }
}

// curriculum_learning {...}: DeepSpeed's legacy sequence-length curriculum, fixed_linear.
void apply_curriculum(const DeepspeedJson& ds, TrainConfig& cfg) {
  const json& r = ds.root();
  if (!r.contains("curriculum_learning")) return;
  const json& c = r["curriculum_learning"];
  ds.only(c, "curriculum_learning",
          {"enabled", "curriculum_type", "min_difficulty", "max_difficulty", "schedule_type", "schedule_config"});
  bool enabled = false;
  ds.boolean(c, "curriculum_learning.", "enabled", enabled);
  if (!enabled) return;
  MT_CHECK(c.value("curriculum_type", "") == "seqlen", "DeepSpeed config '", ds.path(),
           "': curriculum_learning.curriculum_type '", c.value("curriculum_type", ""),
           "' is not supported (seqlen is)");
  MT_CHECK(c.value("schedule_type", "") == "fixed_linear", "DeepSpeed config '", ds.path(),
           "': curriculum_learning.schedule_type '", c.value("schedule_type", ""),
           "' is not supported (fixed_linear is)");
  MT_CHECK(c.contains("schedule_config"), "DeepSpeed config '", ds.path(),
           "': curriculum_learning needs schedule_config {total_curriculum_step, difficulty_step}");
  const json& s = c["schedule_config"];
  ds.only(s, "curriculum_learning.schedule_config", {"total_curriculum_step", "difficulty_step"});
  cfg.curriculum_learning = true;
  ds.integer(c, "curriculum_learning.", "min_difficulty", cfg.curriculum_min_difficulty);
  ds.integer(c, "curriculum_learning.", "max_difficulty", cfg.curriculum_max_difficulty);
  double total = 0;  // the scripts write it as a product, often not a whole number: DeepSpeed floors
  if (ds.number(s, "curriculum_learning.schedule_config.", "total_curriculum_step", total))
    cfg.curriculum_total_step = int64_t(total);
  ds.integer(s, "curriculum_learning.schedule_config.", "difficulty_step", cfg.curriculum_difficulty_step);
}

}  // namespace

void apply_deepspeed_config(TrainConfig& cfg) {
  if (cfg.deepspeed_config.empty()) return;
  DeepspeedJson ds(cfg.deepspeed_config);
  const json& r = ds.root();
  ds.only(r, "",
          {"train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "steps_per_print",
           "zero_optimization", "gradient_clipping", "prescale_gradients", "fp16", "bf16", "curriculum_learning",
           "wall_clock_breakdown"});
  apply_batch(ds, cfg);
  apply_precision(ds, cfg);
  apply_curriculum(ds, cfg);
  ds.number(r, "", "gradient_clipping", cfg.clip_grad);
  ds.boolean(r, "", "prescale_gradients", cfg.prescale_gradients);
  ds.integer(r, "", "steps_per_print", cfg.steps_per_print);
  ds.boolean(r, "", "wall_clock_breakdown", cfg.wall_clock_breakdown);
  if (r.contains("zero_optimization")) {
    const json& z = r["zero_optimization"];
    ds.only(z, "zero_optimization",
            {"stage", "allgather_bucket_size", "reduce_bucket_size", "reduce_scatter", "contiguous_gradients",
             "overlap_comm", "allgather_partitions"});
    ds.integer(z, "zero_optimization.", "stage", cfg.zero_stage);
    ds.integer(z, "zero_optimization.", "allgather_bucket_size", cfg.allgather_bucket_size);
    ds.integer(z, "zero_optimization.", "reduce_bucket_size", cfg.reduce_bucket_size);
    // how DeepSpeed moves the buckets: moetrain's stage 2 always reduces each bucket to the owners
    // of its parts from one contiguous buffer and all-gathers the partitions (docs/zero.md), without
    // overlapping them with computation; false for the first two is a layout moetrain does not have
    for (const char* key : {"reduce_scatter", "allgather_partitions"}) {
      bool on = true;
      ds.boolean(z, "zero_optimization.", key, on);
      MT_CHECK(on, "DeepSpeed config '", cfg.deepspeed_config, "': zero_optimization.", key,
               " false is not supported (moetrain's ZeRO reduces into and gathers from partitions); remove it or "
               "set it true");
    }
    bool accepted = false;  // contiguous_gradients, overlap_comm: accepted, no effect (docs/zero.md)
    ds.boolean(z, "zero_optimization.", "contiguous_gradients", accepted);
    ds.boolean(z, "zero_optimization.", "overlap_comm", accepted);
  }
}

}  // namespace mt::train
