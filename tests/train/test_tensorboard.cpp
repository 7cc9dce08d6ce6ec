// TensorBoard event files (train/tensorboard.h): CRC-32C against published vectors, the encoder
// against bytes the official protobuf and tensorboard's RecordWriter produce, and the writer's files
// decoded back here (framing, CRCs, varints) with the scalars the trainer's records map to.
// tests/cli/tensorboard_reads_scalars.sh reads the same files with the real tensorboard package.
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include "train/tensorboard.h"

using namespace mt::train;
namespace fs = std::filesystem;

namespace {

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += {digits[c >> 4], digits[c & 15]};
  return out;
}

uint64_t little_endian(std::string_view s, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(uint8_t(s[pos + size_t(i)])) << (8 * i);
  return v;
}

uint64_t read_varint(std::string_view s, size_t& pos) {
  uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    REQUIRE(pos < s.size());
    REQUIRE(shift < 64);
    uint8_t b = uint8_t(s[pos++]);
    v |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
}

// Calls field(number, wire type, pos) for each field of a protobuf message; the callback reads
// the value (or it is skipped here).
template <class F>
void for_each_field(std::string_view msg, F field) {
  size_t pos = 0;
  while (pos < msg.size()) {
    uint64_t key = read_varint(msg, pos);
    int number = int(key >> 3), wire = int(key & 7);
    size_t before = pos;
    field(number, wire, pos);
    if (pos != before) continue;
    if (wire == 0) read_varint(msg, pos);
    if (wire == 1) pos += 8;
    if (wire == 5) pos += 4;
    if (wire == 2) pos += read_varint(msg, pos);
    REQUIRE(pos <= msg.size());
  }
}

std::string_view length_delimited(std::string_view msg, size_t& pos) {
  size_t n = read_varint(msg, pos);
  REQUIRE(pos + n <= msg.size());
  std::string_view v = msg.substr(pos, n);
  pos += n;
  return v;
}

struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version, tag;
  std::optional<float> value;
};

Event decode_event(std::string_view data) {
  Event e;
  for_each_field(data, [&](int number, int wire, size_t& pos) {
    if (number == 1 && wire == 1) {
      uint64_t bits = little_endian(data, pos, 8);
      std::memcpy(&e.wall_time, &bits, 8);
      pos += 8;
    } else if (number == 2 && wire == 0) {
      e.step = int64_t(read_varint(data, pos));
    } else if (number == 3 && wire == 2) {
      e.file_version = std::string(length_delimited(data, pos));
    } else if (number == 5 && wire == 2) {
      std::string_view summary = length_delimited(data, pos);
      for_each_field(summary, [&](int n1, int w1, size_t& p1) {
        REQUIRE((n1 == 1 && w1 == 2));
        std::string_view value = length_delimited(summary, p1);
        for_each_field(value, [&](int n2, int w2, size_t& p2) {
          if (n2 == 1 && w2 == 2) e.tag = std::string(length_delimited(value, p2));
          if (n2 == 2 && w2 == 5) {
            uint32_t bits = uint32_t(little_endian(value, p2, 4));
            float f;
            std::memcpy(&f, &bits, 4);
            e.value = f;
            p2 += 4;
          }
        });
      });
    }
  });
  return e;
}

// Every TFRecord of a file, its length and data CRCs checked.
std::vector<Event> read_events(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<Event> events;
  size_t pos = 0;
  while (pos < s.size()) {
    REQUIRE(pos + 12 <= s.size());
    uint64_t n = little_endian(s, pos, 8);
    CHECK(little_endian(s, pos + 8, 4) == masked_crc32c(s.data() + pos, 8));
    REQUIRE(pos + 12 + n + 4 <= s.size());
    std::string_view data(s.data() + pos + 12, n);
    CHECK(little_endian(s, pos + 12 + n, 4) == masked_crc32c(data.data(), data.size()));
    events.push_back(decode_event(data));
    pos += 12 + n + 4;
  }
  return events;
}

std::string temp_folder() {
  char pattern[] = "/tmp/moetrain_tensorboard_XXXXXX";
  REQUIRE(mkdtemp(pattern) != nullptr);
  return pattern;
}

}  // namespace

TEST_CASE("crc32c matches the published test vectors", "[train][tensorboard]") {
  CHECK(crc32c("123456789", 9) == 0xE3069283u);
  CHECK(crc32c("", 0) == 0u);
  // RFC 3720 (iSCSI) appendix B.4
  std::string zeros(32, '\0'), ones(32, '\xff'), up(32, 0), down(32, 0);
  for (int i = 0; i < 32; ++i) up[size_t(i)] = char(i), down[size_t(i)] = char(31 - i);
  CHECK(crc32c(zeros.data(), 32) == 0x8A9136AAu);
  CHECK(crc32c(ones.data(), 32) == 0x62A8AB43u);
  CHECK(crc32c(up.data(), 32) == 0x46DD794Eu);
  CHECK(crc32c(down.data(), 32) == 0x113FDB5Cu);
  // continuing a CRC over a second piece gives the CRC of the whole
  CHECK(crc32c("56789", 5, crc32c("1234", 4)) == 0xE3069283u);
  uint32_t c = 0xE3069283u;
  CHECK(masked_crc32c("123456789", 9) == ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

TEST_CASE("events encode byte for byte as protobuf and tensorboard's RecordWriter", "[train][tensorboard]") {
  // From tensorboard 2.21: RecordWriter.write(Event(wall_time=1700000000.25, step=300000000000,
  // summary=Summary(value=[Value(tag="lm-loss-training/lm loss", simple_value=2.5)])).SerializeToString())
  CHECK(hex(tfrecord(scalar_event(1700000000.25, 300000000000, "lm-loss-training/lm loss", 2.5f))) ==
        "33000000000000000ca720560900001040fc54d9411080f092cbdd082a210a1f0a186c6d2d6c6f73732d747261696e696e672f6c6d"
        "206c6f737315000020402f289f49");
  // ... Event(wall_time=1700000000.25, file_version="brain.Event:2")
  CHECK(hex(tfrecord(file_version_event(1700000000.25))) ==
        "1800000000000000a37f4b220900001040fc54d9411a0d627261696e2e4576656e743a32338d2fe9");
  // Event(step=0, summary=...(tag="x", simple_value=0.0)).SerializeToString(): step and wall_time 0
  // left out, simple_value 0 written (a oneof member)
  CHECK(hex(scalar_event(0, 0, "x", 0.0f)) == "2a0a0a080a01781500000000");
  // a negative step: ten varint bytes, as protobuf writes a negative int64
  Event e = decode_event(scalar_event(1, -3, "t", 1.0f));
  CHECK(e.step == -3);
  CHECK(scalar_event(1, -3, "t", 1.0f).size() == scalar_event(1, 3, "t", 1.0f).size() + 9);
}

TEST_CASE("the writer names its file as TensorFlow, writes the file version first, queues and flushes",
          "[train][tensorboard]") {
  std::string dir = temp_folder() + "/runs/tb";  // created with its parents
  std::string path;
  {
    TensorboardWriter tb(dir, 3, 0);
    path = tb.path();
    CHECK(fs::path(path).parent_path() == fs::path(dir));
    CHECK(std::regex_match(fs::path(path).filename().string(),
                           std::regex(R"(events\.out\.tfevents\.\d{10}\.[^/]+\.\d+\.\d+)")));
    std::vector<Event> events = read_events(path);  // the file version is on disk at once
    REQUIRE(events.size() == 1);
    CHECK(events[0].file_version == "brain.Event:2");
    CHECK(events[0].wall_time > 1.6e9);
    tb.add_scalar("a", 1, 0.5, 1234.5);
    tb.add_scalar("b", 300000000000, 1e-4, 1234.5);
    CHECK(read_events(path).size() == 1);  // queued
    tb.add_scalar("c", 0, -7.25);          // the third fills the queue: all three written
    CHECK(read_events(path).size() == 4);
    tb.add_scalar("d", 5, 3.0);
    CHECK(tb.queued() == 1);
  }  // the destructor flushes
  std::vector<Event> events = read_events(path);
  REQUIRE(events.size() == 5);
  CHECK((events[1].tag == "a" && events[1].step == 1 && events[1].value == 0.5f && events[1].wall_time == 1234.5));
  CHECK((events[2].tag == "b" && events[2].step == 300000000000 && events[2].value == float(1e-4)));
  CHECK((events[3].tag == "c" && events[3].step == 0 && events[3].value == -7.25f && events[3].wall_time > 1.6e9));
  CHECK((events[4].tag == "d" && events[4].step == 5 && events[4].value == 3.0f));
  fs::remove_all(fs::path(dir).parent_path().parent_path());
}

TEST_CASE("a folder that cannot be created is a clear error", "[train][tensorboard]") {
  std::string dir = temp_folder();
  std::ofstream(dir + "/file") << "x";
  CHECK_THROWS_WITH(TensorboardWriter(dir + "/file"),
                    Catch::Contains("cannot create the TensorBoard folder") && Catch::Contains("tensorboard_dir"));
  fs::remove_all(dir);
}

TEST_CASE("metrics records map to Megatron-DeepSpeed's tags", "[train][tensorboard]") {
  nlohmann::json train = {{"iteration", 10},
                          {"consumed_samples", 40},
                          {"consumed_tokens", 1280},
                          {"split", "train"},
                          {"lm_loss", 5.5},
                          {"lr", 2e-4},
                          {"grad_norm", 0.75},
                          {"batch_size", 4},
                          {"iteration_time_s", 0.125},
                          {"moe_loss", 0.01},
                          {"moe_layers",
                           {{{"layer", 1},
                             {"expert_counts", {3, 1, 0, 4}},
                             {"dropped", 0.25},
                             {"aux_loss", 1.1},
                             {"entropy", 0.9},
                             {"interference", -0.125},
                             {"drop_cost", 0.0625}}}}};
  nlohmann::json valid = {{"iteration", 10},  {"consumed_samples", 40}, {"consumed_tokens", 1280},
                          {"split", "valid"}, {"lm_loss", 6.0},         {"ppl", 403.4287934927351}};
  nlohmann::json event = {{"iteration", 10}, {"event", "kd_stopped"}};
  auto scalars = [&](const TensorboardOptions& options) {
    std::string dir = temp_folder(), path;
    {
      TensorboardWriter tb(dir);
      for (const auto& r : {train, valid, event}) write_training_scalars(tb, r, options);
      path = tb.path();
    }
    std::map<std::string, std::pair<int64_t, float>> out;  // tag -> (step, value)
    std::vector<Event> events = read_events(path);
    for (size_t i = 1; i < events.size(); ++i) {
      CHECK(out.count(events[i].tag) == 0);
      out[events[i].tag] = {events[i].step, *events[i].value};
    }
    fs::remove_all(dir);
    return out;
  };
  auto plain = scalars({});
  CHECK(plain.at("lm-loss-training/lm loss") == std::pair<int64_t, float>{10, 5.5f});
  CHECK(plain.at("lm-loss-training/lm loss vs samples") == std::pair<int64_t, float>{40, 5.5f});
  CHECK(plain.at("lm-loss-training/lm loss vs tokens") == std::pair<int64_t, float>{1280, 5.5f});
  CHECK(plain.at("learning-rate/learning-rate") == std::pair<int64_t, float>{10, float(2e-4)});
  CHECK(plain.at("grad-norm/grad-norm vs tokens") == std::pair<int64_t, float>{1280, 0.75f});
  CHECK(plain.at("lm-loss-training/moe loss") == std::pair<int64_t, float>{10, 0.01f});
  CHECK(plain.at("steps-vs-tokens/y=steps,x=tokens") == std::pair<int64_t, float>{1280, 10.0f});
  CHECK(plain.at("lm-loss-validation/lm loss validation vs samples") == std::pair<int64_t, float>{40, 6.0f});
  CHECK(plain.at("moe/layer_2/dropped") == std::pair<int64_t, float>{10, 0.25f});
  CHECK(plain.at("moe/layer_2/router_entropy") == std::pair<int64_t, float>{10, 0.9f});
  CHECK(plain.at("moe/layer_2/busiest_expert_share") == std::pair<int64_t, float>{10, 0.5f});
  CHECK(plain.at("moe/layer_2/interference") == std::pair<int64_t, float>{10, -0.125f});
  CHECK(plain.at("moe/layer_2/drop_cost") == std::pair<int64_t, float>{10, 0.0625f});
  CHECK(plain.at("moe-expert-load/layer_2/expert_0") == std::pair<int64_t, float>{10, 0.375f});
  CHECK(plain.at("moe-expert-load/layer_2/expert_2") == std::pair<int64_t, float>{10, 0.0f});
  for (const char* off :
       {"batch-size/batch-size", "iteration-time/iteration-time", "lm-loss-validation/lm loss validation ppl",
        "lm-loss-training/kd loss", "loss-scale/loss-scale"})
    CHECK(plain.count(off) == 0);
  TensorboardOptions all;
  all.log_batch_size = all.log_timers = all.log_validation_ppl = true;
  auto full = scalars(all);
  CHECK(full.at("batch-size/batch-size vs tokens") == std::pair<int64_t, float>{1280, 4.0f});
  CHECK(full.at("iteration-time/iteration-time vs samples") == std::pair<int64_t, float>{40, 0.125f});
  CHECK(full.at("lm-loss-validation/lm loss validation ppl") ==
        std::pair<int64_t, float>{10, float(403.4287934927351)});
  CHECK(full.size() == plain.size() + 3 * 3);
}
