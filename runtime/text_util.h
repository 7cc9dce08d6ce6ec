// Small text helpers shared by every folder: "did you mean" suggestions for names.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

namespace mt {

// Levenshtein distance.
inline size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The candidate closest to `name` (empty when there are none).
inline std::string closest_name(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const std::string& c : candidates) {
    size_t d = edit_distance(name, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

// A command-line flag "--name" or "--name=value": sets name (without the dashes) and, after '=',
// value; returns whether a value was attached. Not a flag (or a bare "--"): returns false, name empty.
// "a, b, c"
inline std::string join(const std::vector<std::string>& parts, const std::string& separator = ", ") {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? separator : "") + parts[i];
  return out;
}

inline bool split_flag(const std::string& arg, std::string& name, std::string& value) {
  name.clear();
  value.clear();
  if (arg.rfind("--", 0) != 0 || arg == "--") return false;
  name = arg.substr(2);
  size_t eq = name.find('=');
  if (eq == std::string::npos) return false;
  value = name.substr(eq + 1);
  name = name.substr(0, eq);
  return true;
}

}  // namespace mt
