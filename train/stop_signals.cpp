#include "train/stop_signals.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>

#include "parallel/communicator.h"
#include "parallel/watchdog.h"

namespace mt::train {
namespace {

std::atomic<int> g_stop_signal{0};
std::atomic<int> g_received{0};  // signals this process received since the scope opened
char g_who[32] = "";             // " on rank 3" under mpirun (set when the scope opens)
struct sigaction g_old_term {
}, g_old_int{};

// Appends `text` to buf at *len (async-signal-safe: no allocation, no locale).
void append(char* buf, size_t size, size_t* len, const char* text) {
  for (; *text && *len + 1 < size; ++text) buf[(*len)++] = *text;
}

// The first signal asks for a stop; the second ends the process at once.
extern "C" void on_stop_signal(int sig) {
  g_stop_signal.store(sig);
  parallel::note_stop_signal(sig);  // a collective that times out says the stop could not be honoured
  if (g_received.fetch_add(1) == 0) return;
  char line[160], number[4] = {char('0' + sig / 10 % 10), char('0' + sig % 10), 0, 0};
  size_t len = 0;
  append(line, sizeof line, &len, "\nmoetrain: second stop signal (");
  append(line, sizeof line, &len, sig >= 10 ? number : number + 1);
  append(line, sizeof line, &len, ")");
  append(line, sizeof line, &len, g_who);
  append(line, sizeof line, &len, ": exiting now, without saving\n");
  ssize_t ignored = write(STDERR_FILENO, line, len);
  (void)ignored;
  _exit(128 + sig);
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
  g_received.store(0);
  parallel::note_stop_signal(0);
  if (!installed_) return;
  parallel::Communicator& world = parallel::world();
  if (world.size() > 1) std::snprintf(g_who, sizeof g_who, " on rank %d", world.rank());
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
