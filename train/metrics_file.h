// metrics.jsonl: one JSON object per line (the training log's records, validation, zero-shot tasks,
// events), appended and flushed at once so a crash loses nothing logged. An empty path writes nothing
// (ranks other than 0, runs without a save folder or metrics_file).
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/error.h"

namespace mt::train {

class MetricsFile {
 public:
  explicit MetricsFile(const std::string& path) {
    if (path.empty()) return;
    std::filesystem::path p(path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    out_.open(path, std::ios::app);
    MT_CHECK(out_, "cannot open the metrics file '", path, "'");
  }
  void write(const nlohmann::json& j) {
    if (!out_.is_open()) return;
    out_ << j.dump() << "\n";
    out_.flush();
  }

 private:
  std::ofstream out_;
};

}  // namespace mt::train
