// SIGTERM / SIGINT during training: the first one asks the trainer to finish the iteration, save a
// checkpoint and stop (preemption on a cluster); the trainer polls `stop_signal()` once per
// iteration and, under mpirun, all ranks agree on it. A second one received by the process ends
// it at once, with one line saying so and exit status 128 + signal, without saving: the way out
// when the first cannot be honoured (a rank stuck in a collective waiting for a stopped peer, a
// save on a dead file system). The handlers are installed for the lifetime of a StopSignalScope
// and the previous ones restored after it.
#pragma once

namespace mt::train {

// The signal received since the scope opened (0: none).
int stop_signal();
// Records a stop request as if a signal had arrived (a rank learning another rank's signal); it
// does not count as a received signal, so the process's own first signal still only stops it.
void set_stop_signal(int sig);

class StopSignalScope {
 public:
  explicit StopSignalScope(bool install);
  ~StopSignalScope();
  StopSignalScope(const StopSignalScope&) = delete;
  StopSignalScope& operator=(const StopSignalScope&) = delete;

 private:
  bool installed_;
};

}  // namespace mt::train
