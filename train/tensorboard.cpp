#include "train/tensorboard.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <vector>

#include "runtime/error.h"

namespace mt::train {
namespace {

// The 256 CRC-32C remainders of one byte (reflected polynomial 0x82F63B78).
constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

// `bytes` little-endian bytes of v.
void put_little_endian(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}

// Protobuf's base-128 varint: 7 bits a byte, low bits first, the high bit set on all but the last.
void put_varint(std::string& out, uint64_t v) {
  for (; v >= 0x80; v >>= 7) out.push_back(char((v & 0x7f) | 0x80));
  out.push_back(char(v));
}

// Protobuf wire types.
enum Wire : uint64_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// A field's key: its number and wire type.
void put_key(std::string& out, int field, Wire wire) {
  put_varint(out, uint64_t(field) << 3 | wire);
}

// A length-delimited field (string, bytes, embedded message).
void put_bytes(std::string& out, int field, std::string_view bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}

// Event's fields 1 (wall_time, double) and 2 (step, int64), each left out when 0 as proto3 does.
std::string event_time_and_step(double wall_time, int64_t step) {
  std::string out;
  uint64_t bits;
  std::memcpy(&bits, &wall_time, sizeof bits);
  if (bits != 0) {
    put_key(out, 1, kFixed64);
    put_little_endian(out, bits, 8);
  }
  if (step != 0) {
    put_key(out, 2, kVarint);
    put_varint(out, uint64_t(step));  // a negative int64 takes 10 bytes, as protobuf writes it
  }
  return out;
}

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = kCrc32cTable[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  uint32_t crc = crc32c(data, n);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string tfrecord(std::string_view data) {
  std::string out;
  put_little_endian(out, data.size(), 8);
  put_little_endian(out, masked_crc32c(out.data(), 8), 4);
  out.append(data);
  put_little_endian(out, masked_crc32c(data.data(), data.size()), 4);
  return out;
}

std::string scalar_event(double wall_time, int64_t step, std::string_view tag, float value) {
  std::string summary_value;  // Summary.Value{tag = 1, simple_value = 2}
  put_bytes(summary_value, 1, tag);
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  put_key(summary_value, 2, kFixed32);  // written even when 0: simple_value is in a oneof
  put_little_endian(summary_value, bits, 4);
  std::string summary;  // Summary{repeated Value value = 1}
  put_bytes(summary, 1, summary_value);
  std::string event = event_time_and_step(wall_time, step);
  put_bytes(event, 5, summary);  // Event.summary = 5
  return event;
}

std::string file_version_event(double wall_time, std::string_view version) {
  std::string event = event_time_and_step(wall_time, 0);
  put_bytes(event, 3, version);  // Event.file_version = 3
  return event;
}

double unix_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TensorboardWriter::TensorboardWriter(const std::string& folder, int64_t queue_size, double flush_secs)
    : queue_size_(std::max<int64_t>(queue_size, 1)), flush_secs_(flush_secs) {
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  MT_CHECK(!ec && std::filesystem::is_directory(folder), "cannot create the TensorBoard folder '", folder,
           "' (tensorboard_dir): ", ec ? ec.message() : "it is not a folder");
  // TensorFlow's name: events.out.tfevents.<unix time, 10 digits>.<host>.<pid>.<writer of this process>
  static std::atomic<int> writers{0};
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  char name[512];
  std::snprintf(name, sizeof name, "events.out.tfevents.%010lld.%s.%lld.%d", (long long)unix_time_now(), host,
                (long long)getpid(), writers++);
  path_ = (std::filesystem::path(folder) / name).string();
  file_ = std::fopen(path_.c_str(), "ab");
  MT_CHECK(file_ != nullptr, "cannot create the TensorBoard event file '", path_,
           "' (tensorboard_dir): ", std::strerror(errno));
  last_flush_ = unix_time_now();
  append(tfrecord(file_version_event(last_flush_)));
}

TensorboardWriter::~TensorboardWriter() {
  flush();
  if (file_) std::fclose(file_);
}

void TensorboardWriter::add_scalar(const std::string& tag, int64_t step, double value, double wall_time) {
  double now = unix_time_now();
  queue_ += tfrecord(scalar_event(wall_time < 0 ? now : wall_time, step, tag, float(value)));
  queued_ += 1;
  if (queued_ >= queue_size_ || (flush_secs_ > 0 && now - last_flush_ >= flush_secs_)) flush();
}

void TensorboardWriter::flush() {
  last_flush_ = unix_time_now();
  if (queued_ == 0) return;
  append(queue_);
  queue_.clear();
  queued_ = 0;
}

void TensorboardWriter::append(const std::string& bytes) {
  if (failed_) return;
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) == bytes.size() && std::fflush(file_) == 0) return;
  failed_ = true;  // a full disk must not end the training run: say so once and stop writing events
  std::fprintf(stderr, "moetrain: warning: cannot write TensorBoard events to '%s': %s; no more are written\n",
               path_.c_str(), std::strerror(errno));
}

TensorboardOptions tensorboard_options(const TrainConfig& cfg) {
  TensorboardOptions o;
  o.log_timers = cfg.log_timers_to_tensorboard;
  o.log_batch_size = cfg.log_batch_size_to_tensorboard;
  o.log_validation_ppl = cfg.log_validation_ppl_to_tensorboard;
  o.log_optimizer_states = cfg.log_optimizer_states_to_tensorboard;
  return o;
}

namespace {

using nlohmann::json;

// The record's number `key`; none when it is missing or not a number.
std::optional<double> number(const json& record, const char* key) {
  auto it = record.find(key);
  if (it == record.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

// The record's integer `key` (an iteration or a count); none when it is missing.
std::optional<int64_t> count(const json& record, const char* key) {
  std::optional<double> v = number(record, key);
  if (!v) return std::nullopt;
  return record.at(key).is_number_integer() ? record.at(key).get<int64_t>() : int64_t(*v);
}

// Megatron's three x axes of a scalar: the iteration, and the consumed training samples and tokens.
struct Axes {
  int64_t iteration = 0;
  std::optional<int64_t> samples, tokens;
};

// `tag` at the iteration, and as Megatron-DeepSpeed writes them "<tag> vs samples" and "<tag> vs
// tokens" at the consumed samples and tokens (when the record has them).
void add_on_axes(TensorboardWriter& tb, const std::string& tag, double value, const Axes& x) {
  tb.add_scalar(tag, x.iteration, value);
  if (x.samples) tb.add_scalar(tag + " vs samples", *x.samples, value);
  if (x.tokens) tb.add_scalar(tag + " vs tokens", *x.tokens, value);
}

// The record's number `key` (when present) as `tag` on the three axes.
void add_field_on_axes(TensorboardWriter& tb, const json& record, const char* key, const std::string& tag,
                       const Axes& x) {
  if (std::optional<double> v = number(record, key)) add_on_axes(tb, tag, *v, x);
}

// Per MoE layer (numbered from 1, as the log line): moe/layer_<l>/{dropped, router_entropy,
// aux_loss, z_loss (when on), load_cv, dead_experts, interference and drop_cost (diagnostics), busiest_expert_share}
// and moe-expert-load/layer_<l>/expert_<e> (each expert's share of the layer's assignments before dropping), at the
// iteration.
void write_moe_layers(TensorboardWriter& tb, const json& layers, int64_t iteration) {
  for (const json& layer : layers) {
    std::string l = std::to_string(layer.value("layer", int64_t(0)) + 1);
    std::string prefix = "moe/layer_" + l + "/";
    for (auto [key, name] : {std::pair{"dropped", "dropped"},
                             {"entropy", "router_entropy"},
                             {"aux_loss", "aux_loss"},
                             {"z_loss", "z_loss"},
                             {"load_cv", "load_cv"},
                             {"dead_experts", "dead_experts"},
                             {"interference", "interference"},
                             {"drop_cost", "drop_cost"}})
      if (std::optional<double> v = number(layer, key)) tb.add_scalar(prefix + name, iteration, *v);
    std::vector<int64_t> counts = layer.value("expert_counts", std::vector<int64_t>{});
    int64_t total = 0, most = 0;
    for (int64_t c : counts) total += c, most = std::max(most, c);
    if (total == 0) continue;
    tb.add_scalar(prefix + "busiest_expert_share", iteration, double(most) / double(total));
    for (size_t e = 0; e < counts.size(); ++e)
      tb.add_scalar("moe-expert-load/layer_" + l + "/expert_" + std::to_string(e), iteration,
                    double(counts[e]) / double(total));
  }
}

// A "train" record: Megatron-DeepSpeed's training_log tags, then the MoE layers.
void write_train_record(TensorboardWriter& tb, const json& r, const TensorboardOptions& options, const Axes& x) {
  if (x.samples) {
    tb.add_scalar("steps-vs-samples/y=steps,x=samples", *x.samples, double(x.iteration));
    tb.add_scalar("steps-vs-samples/y=samples,x=steps", x.iteration, double(*x.samples));
  }
  if (x.tokens) {
    tb.add_scalar("steps-vs-tokens/y=steps,x=tokens", *x.tokens, double(x.iteration));
    tb.add_scalar("steps-vs-tokens/y=tokens,x=steps", x.iteration, double(*x.tokens));
  }
  add_field_on_axes(tb, r, "lr", "learning-rate/learning-rate", x);
  if (options.log_batch_size) add_field_on_axes(tb, r, "batch_size", "batch-size/batch-size", x);
  add_field_on_axes(tb, r, "lm_loss", "lm-loss-training/lm loss", x);
  add_field_on_axes(tb, r, "moe_loss", "lm-loss-training/moe loss", x);  // moe_loss_coeff x the aux loss
  add_field_on_axes(tb, r, "z_loss", "lm-loss-training/z loss", x);      // moe_z_loss_coeff x the router z-loss
  add_field_on_axes(tb, r, "kd_loss", "lm-loss-training/kd loss", x);
  add_field_on_axes(tb, r, "loss_scale", "loss-scale/loss-scale", x);
  add_field_on_axes(tb, r, "grad_norm", "grad-norm/grad-norm", x);
  if (options.log_optimizer_states && r.contains("optimizer") && r["optimizer"].is_object()) {
    for (const auto& [name, v] : r["optimizer"].items()) {  // Megatron: these two axes only
      if (!v.is_number()) continue;
      if (x.tokens) tb.add_scalar("optimizer/" + name + " vs tokens", *x.tokens, v.get<double>());
      tb.add_scalar("optimizer/" + name, x.iteration, v.get<double>());
    }
  }
  if (options.log_timers) {
    add_field_on_axes(tb, r, "iteration_time_s", "iteration-time/iteration-time", x);
    if (r.contains("timers") && r["timers"].is_object())  // Megatron's timers.write: <name>-time
      for (const auto& [name, v] : r["timers"].items())
        if (v.is_number()) tb.add_scalar(name + "-time", x.iteration, v.get<double>());
    for (auto [key, tag] : {std::pair{"tokens_per_s", "throughput/tokens_per_sec"},
                            {"tflops", "throughput/tflops"},
                            {"mfu", "throughput/mfu"}})
      if (std::optional<double> v = number(r, key)) tb.add_scalar(tag, x.iteration, *v);
  }
  if (r.contains("moe_layers") && r["moe_layers"].is_array()) write_moe_layers(tb, r["moe_layers"], x.iteration);
}

// A "valid" or "test" record: evaluate_and_print_results' lm-loss-validation/lm loss <validation|test>
// and its perplexity.
void write_evaluation_record(TensorboardWriter& tb, const json& r, const TensorboardOptions& options, const Axes& x) {
  std::string tag = "lm-loss-validation/lm loss " + std::string(r["split"] == "test" ? "test" : "validation");
  add_field_on_axes(tb, r, "lm_loss", tag, x);
  if (options.log_validation_ppl) add_field_on_axes(tb, r, "ppl", tag + " ppl", x);
}

// A "tasks" record: zero-shot/<task>_<metric> at the iteration.
void write_tasks_record(TensorboardWriter& tb, const json& r, const Axes& x) {
  for (const auto& [key, v] : r.items())
    if (v.is_number() && key != "iteration" && key != "consumed_samples" && key != "consumed_tokens")
      tb.add_scalar("zero-shot/" + key, x.iteration, v.get<double>());
}

}  // namespace

void write_training_scalars(TensorboardWriter& tb, const json& record, const TensorboardOptions& options) {
  std::optional<int64_t> iteration = count(record, "iteration");
  auto split = record.find("split");
  if (!iteration || split == record.end() || !split->is_string()) return;  // events: nothing to plot
  Axes x{*iteration, count(record, "consumed_samples"), count(record, "consumed_tokens")};
  if (*split == "train") {
    write_train_record(tb, record, options, x);
  } else if (*split == "valid" || *split == "test") {
    write_evaluation_record(tb, record, options, x);
  } else if (*split == "tasks") {
    write_tasks_record(tb, record, x);
  }
}

}  // namespace mt::train
