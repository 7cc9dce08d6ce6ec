// TensorBoard event files written by our own small encoder (no TensorFlow, no protobuf library):
// a file `events.out.tfevents.<unix time>.<host>.<pid>.<n>` of TFRecords (uint64 length, masked
// CRC-32C of the length, the data, masked CRC-32C of the data), each holding one Event protobuf.
// The first event is the file version ("brain.Event:2"); every other one a scalar, encoded as
// PyTorch's SummaryWriter.add_scalar writes it (Summary.Value.simple_value, a float).
// write_training_scalars maps the trainer's metrics.jsonl records to Megatron-DeepSpeed's
// TensorBoard tags (docs/training.md, "TensorBoard").
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "train/config.h"

namespace mt::train {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `n` bytes, continuing from `crc`
// (0 to start): crc32c("123456789") = 0xE3069283.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
// TFRecord's masked CRC of the bytes: the CRC-32C rotated right by 15 bits plus 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t n);
// One TFRecord framing `data`: length (uint64), its masked CRC, the data, its masked CRC
// (all little-endian).
std::string tfrecord(std::string_view data);
// The serialized Event{wall_time, step, summary{value{tag, simple_value}}}: one scalar. wall_time
// and step are left out when 0, as protobuf does.
std::string scalar_event(double wall_time, int64_t step, std::string_view tag, float value);
// The serialized Event{wall_time, file_version}: the first event of every event file.
std::string file_version_event(double wall_time, std::string_view version = "brain.Event:2");
// Seconds since the Unix epoch, as the events' wall_time.
double unix_time_now();

// One event file in a folder, written in TFRecords: the file-version event at once, then scalars
// buffered up to `queue_size` events (or `flush_secs` since the last write; <= 0: no time limit)
// and appended to the file together, so a crash loses at most the queue. Not thread-safe.
class TensorboardWriter {
 public:
  // Creates `folder` (and its parents) and a new event file in it; throws a clear error when it
  // cannot.
  explicit TensorboardWriter(const std::string& folder, int64_t queue_size = 1000, double flush_secs = 120);
  ~TensorboardWriter();  // flushes the queue
  TensorboardWriter(const TensorboardWriter&) = delete;
  TensorboardWriter& operator=(const TensorboardWriter&) = delete;

  // Queues the scalar `value` (stored as a float, as TensorBoard does) of `tag` at `step`;
  // wall_time < 0: now.
  void add_scalar(const std::string& tag, int64_t step, double value, double wall_time = -1);
  // Appends the queued events to the file and flushes it to the operating system.
  void flush();
  const std::string& path() const { return path_; }
  int64_t queued() const { return queued_; }

 private:
  // Appends `bytes` to the file; after a failed write it warns once on stderr and writes no more.
  void append(const std::string& bytes);

  std::string path_;
  std::FILE* file_ = nullptr;
  std::string queue_;  // the queued events' TFRecords
  int64_t queued_ = 0, queue_size_ = 1000;
  double flush_secs_ = 120, last_flush_ = 0;
  bool failed_ = false;
};

// Which optional groups of tags are written (Megatron-DeepSpeed's --log-*-to-tensorboard flags).
struct TensorboardOptions {
  bool log_timers = false;            // iteration-time/*, throughput/*, <phase>-time
  bool log_batch_size = false;        // batch-size/*
  bool log_validation_ppl = false;    // lm-loss-validation/lm loss validation ppl*
  bool log_optimizer_states = false;  // optimizer/*
};
TensorboardOptions tensorboard_options(const TrainConfig& cfg);

// Writes the TensorBoard scalars of one metrics.jsonl record (train/metrics_file.h): Megatron-
// DeepSpeed's tags for a "train" record (losses, learning rate, grad norm, loss scale, batch size,
// iteration time, optimizer states) with their " vs samples" / " vs tokens" copies, the MoE
// layers' loads; a "valid" or "test" record's loss and perplexity; a "tasks" record's zero-shot
// scores. Fields a record lacks are not written; other records (events) write nothing.
void write_training_scalars(TensorboardWriter& tb, const nlohmann::json& record, const TensorboardOptions& options);

}  // namespace mt::train
