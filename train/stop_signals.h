// SIGTERM / SIGINT during training: the first one asks the trainer to finish the iteration, save a
// checkpoint and stop (preemption on a cluster); the trainer polls `stop_signal()` once per
// iteration and, under mpirun, all ranks agree on it. The handlers are installed for the lifetime
// of a StopSignalScope and the previous ones restored after it.
#pragma once

namespace mt::train {

// The signal received since the scope opened (0: none).
int stop_signal();
// Records a stop request as if a signal had arrived (a rank learning another rank's signal).
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
