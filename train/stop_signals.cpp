#include "train/stop_signals.h"

#include <atomic>
#include <csignal>

namespace mt::train {
namespace {

std::atomic<int> g_stop_signal{0};
struct sigaction g_old_term {
}, g_old_int{};

extern "C" void on_stop_signal(int sig) {
  g_stop_signal.store(sig);
}

}  // namespace

int stop_signal() {
  return g_stop_signal.load();
}

void set_stop_signal(int sig) {
  g_stop_signal.store(sig);
}

StopSignalScope::StopSignalScope(bool install) : installed_(install) {
  g_stop_signal.store(0);
  if (!installed_) return;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, &g_old_term);
  sigaction(SIGINT, &sa, &g_old_int);
}

StopSignalScope::~StopSignalScope() {
  if (!installed_) return;
  sigaction(SIGTERM, &g_old_term, nullptr);
  sigaction(SIGINT, &g_old_int, nullptr);
}

}  // namespace mt::train
