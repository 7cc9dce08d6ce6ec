// Benchmark results: a table for people, or one JSON object per line for scripts
// ({"bench","name","value","unit","ratio"?}).
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

namespace mt::bench {

class Reporter {
 public:
  Reporter(std::string bench, bool json) : bench_(std::move(bench)), json_(json) {}

  void header() const {
    if (!json_) std::printf("%-34s %12s %-8s %10s  %s\n", "name", "value", "unit", "ratio", "note");
  }
  // ratio < 0 means "no ratio".
  void line(const std::string& name, double value, const char* unit, double ratio = -1,
            const std::string& note = "") const {
    if (json_) {
      std::printf("{\"bench\":\"%s\",\"name\":\"%s\",\"value\":%.6g,\"unit\":\"%s\"", bench_.c_str(), name.c_str(),
                  value, unit);
      if (ratio >= 0) std::printf(",\"ratio\":%.4f", ratio);
      std::printf("}\n");
    } else {
      std::printf("%-34s %12.2f %-8s ", name.c_str(), value, unit);
      if (ratio >= 0)
        std::printf("%10.3f  ", ratio);
      else
        std::printf("%10s  ", "");
      std::printf("%s\n", note.c_str());
    }
    std::fflush(stdout);
  }
  bool json() const { return json_; }

 private:
  std::string bench_;
  bool json_;
};

}  // namespace mt::bench
