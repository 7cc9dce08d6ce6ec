// Where a step's time goes, kernel by kernel: `moetrain bench train --profile` switches this on
// and prints one row per kernel (and per dtype, for GEMMs and copies). Off by default; when off, a
// kernel call pays one relaxed atomic load. Only the outermost kernel of a nested call counts.
// The times are host wall-clock: on the CPU the kernel's own time; device kernels run
// asynchronously, so for them a row would show launch cost only (the profile is for the CPU).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mt::kernel_profile {

void set_enabled(bool on);
bool enabled();
void reset();

struct Row {
  std::string name;
  int64_t calls = 0;
  double seconds = 0;
};
// Every kernel timed since the last reset, most time first.
std::vector<Row> rows();

// Times its own lifetime as one call of kernel `name` (+ " " + detail when detail is given).
class ScopedTimer {
 public:
  explicit ScopedTimer(const char* name, const std::string& detail = {});
  ~ScopedTimer();
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  bool counted_ = false;        // on when constructed: counted in the nesting depth
  const char* name_ = nullptr;  // nullptr: not timing (off, or nested in a timed kernel)
  std::string detail_;
  double start_ = 0;
};

}  // namespace mt::kernel_profile
