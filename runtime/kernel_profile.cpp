#include "runtime/kernel_profile.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>

namespace mt::kernel_profile {
namespace {

std::atomic<bool> g_enabled{false};
std::mutex g_mutex;
std::map<std::string, Row>& table() {
  static std::map<std::string, Row> t;
  return t;
}
thread_local int t_depth = 0;

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

void set_enabled(bool on) {
  g_enabled.store(on, std::memory_order_relaxed);
}

bool enabled() {
  return g_enabled.load(std::memory_order_relaxed);
}

void reset() {
  std::lock_guard<std::mutex> lock(g_mutex);
  table().clear();
}

std::vector<Row> rows() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<Row> out;
  for (const auto& [name, row] : table()) out.push_back(row);
  std::sort(out.begin(), out.end(), [](const Row& a, const Row& b) { return a.seconds > b.seconds; });
  return out;
}

ScopedTimer::ScopedTimer(const char* name, const std::string& detail) {
  if (!enabled()) return;
  counted_ = true;
  if (t_depth++ > 0) return;
  name_ = name;
  detail_ = detail;
  start_ = now();
}

ScopedTimer::~ScopedTimer() {
  if (!counted_) return;
  --t_depth;
  if (!name_) return;
  double seconds = now() - start_;
  std::string key = detail_.empty() ? std::string(name_) : std::string(name_) + " " + detail_;
  std::lock_guard<std::mutex> lock(g_mutex);
  Row& row = table()[key];
  row.name = key;
  row.calls += 1;
  row.seconds += seconds;
}

}  // namespace mt::kernel_profile
