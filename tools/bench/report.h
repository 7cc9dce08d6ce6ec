// Benchmark results: a table for people, or one JSON object per line for scripts
// ({"bench","name","value","unit","ratio"?,"note"?}).
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
      if (!note.empty()) std::printf(",\"note\":\"%s\"", json_escaped(note).c_str());
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
  // `text` inside a JSON string: quotes, backslashes and control characters escaped.
  static std::string json_escaped(const std::string& text) {
    std::string out;
    for (char c : text) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char u[8];
        std::snprintf(u, sizeof u, "\\u%04x", c);
        out += u;
      } else {
        out += c;
      }
    }
    return out;
  }

  std::string bench_;
  bool json_;
};

}  // namespace mt::bench
