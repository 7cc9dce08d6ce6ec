#include "parallel/watchdog.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "parallel/communicator.h"

namespace mt::parallel {
namespace {

using Clock = std::chrono::steady_clock;

double g_timeout_seconds = 600;  // Megatron's default: 10 minutes
OnTimeout g_on_timeout = OnTimeout::AbortJob;
void (*g_idle_service)() = nullptr;
std::atomic<int> g_stop_signal{0};

// Polls during the first moments of a wait run back to back: peers that are on time cost no sleep.
constexpr auto kSpin = std::chrono::milliseconds(5);
// Then the pause between polls doubles from the first to the last value.
constexpr auto kFirstPause = std::chrono::microseconds(50);
constexpr auto kLongestPause = std::chrono::microseconds(1000);

}  // namespace

void set_collective_timeout(double seconds) {
  MT_CHECK(seconds > 0, "the collective timeout must be positive, got ", seconds, " s");
  g_timeout_seconds = seconds;
}

double collective_timeout_seconds() {
  return g_timeout_seconds;
}

void set_on_timeout(OnTimeout action) {
  g_on_timeout = action;
}

double census_grace_seconds() {
  return std::min(10.0, std::max(1.0, g_timeout_seconds / 4));
}

void set_idle_service(void (*service)()) {
  g_idle_service = service;
}

void run_idle_service() {
  if (g_idle_service) g_idle_service();
}

bool wait_for_collective(const std::function<bool()>& done) {
  if (done()) return true;
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(g_timeout_seconds));
  while (Clock::now() - start < kSpin)
    if (done()) return true;
  auto pause = std::chrono::duration_cast<Clock::duration>(kFirstPause);
  for (;;) {
    if (done()) return true;
    run_idle_service();
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::duration_cast<Clock::duration>(kLongestPause));
  }
}

void let_peer_end_job() {
  if (g_on_timeout == OnTimeout::Throw) return;
  auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(2 * census_grace_seconds() + 5));
  while (Clock::now() < until) {
    run_idle_service();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void fail_collective(const std::string& message) {
  if (g_on_timeout == OnTimeout::Throw) throw CollectiveTimeout(message);
  std::fflush(stdout);
  std::fprintf(stderr, "moetrain: error: %s\n", message.c_str());
  std::fflush(stderr);
  abort_other_ranks(1);  // MPI_Abort: mpirun ends every rank, the stopped one included
  std::_Exit(1);
}

std::string timeout_advice() {
  std::string out =
      "Check the node of a rank that did not arrive (a stopped or swapping process, a dead file-system mount, "
      "a wedged GPU), or raise distributed_timeout_minutes (now " +
      duration_text(g_timeout_seconds) + ") if a step may legitimately wait that long.";
  if (int sig = noted_stop_signal())
    out.append(" Signal ").append(std::to_string(sig)).append(" arrived while waiting: no checkpoint could be saved.");
  return out + " Ending the job.";
}

void note_stop_signal(int sig) {
  g_stop_signal.store(sig, std::memory_order_relaxed);
}

int noted_stop_signal() {
  return g_stop_signal.load(std::memory_order_relaxed);
}

std::string rank_list(std::vector<int> ranks, size_t max_items) {
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  std::string out;
  size_t items = 0;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (items == max_items) return out.append(", ... (").append(std::to_string(ranks.size())).append(" ranks)");
    if (!out.empty()) out += ", ";
    out += std::to_string(ranks[i]);
    if (j > i) out.append("-").append(std::to_string(ranks[j]));
    ++items;
    i = j + 1;
  }
  return out;
}

std::string duration_text(double seconds) {
  char buf[32];
  if (seconds < 120)
    std::snprintf(buf, sizeof buf, "%g s", seconds);
  else
    std::snprintf(buf, sizeof buf, "%g min", seconds / 60);
  return buf;
}

}  // namespace mt::parallel
