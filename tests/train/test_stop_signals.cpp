// SIGTERM / SIGINT during training: the first asks for a stop, the second ends the process at
// once with status 128 + signal (in a child process, so the test run survives it).
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>

#include "train/stop_signals.h"

using namespace mt::train;

TEST_CASE("a second stop signal ends the process at once", "[train][signals]") {
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    StopSignalScope scope(true);
    set_stop_signal(SIGINT);  // another rank's stop: not a signal this process received
    raise(SIGTERM);           // the first received one only asks for a stop
    if (stop_signal() != SIGTERM) _exit(2);
    raise(SIGINT);  // the second: gone at once
    _exit(3);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 128 + SIGINT);
}
