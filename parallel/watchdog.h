// The collective watchdog: no rank waits forever for a peer that stopped answering (a stopped
// process, a dead file-system mount, a wedged GPU). Every collective waits through
// `wait_for_collective`, which polls its completion, first spinning briefly (a collective whose
// peers are on time costs no sleep), then sleeping between polls (a late peer costs no CPU) and
// answering the other ranks' questions of where this rank waits (the MPI census, installed by
// parallel/mpi_communicator.cpp). After `collective_timeout_seconds()` the collective fails with
// one message naming the collective, its group and the ranks that did not arrive: printed, then
// the whole job ends (MPI_Abort), or thrown as CollectiveTimeout where tests ask for it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "runtime/error.h"

namespace mt::parallel {

// The error of a collective that timed out (only thrown with OnTimeout::Throw).
class CollectiveTimeout : public Error {
 public:
  using Error::Error;
};

enum class OnTimeout { AbortJob, Throw };

// How long one collective may wait for its peers (Megatron's distributed_timeout_minutes, 10 min
// by default); must be positive. Process-wide, applies to every communicator.
void set_collective_timeout(double seconds);
double collective_timeout_seconds();
// What a timed-out collective does: print its message and end the job (the default), or throw.
void set_on_timeout(OnTimeout action);

// Polls `done` until it returns true (then returns true) or the timeout passes since the call
// (then returns false); between polls it sleeps and runs the idle service.
bool wait_for_collective(const std::function<bool()>& done);
// How long a rank that timed out waits for the others' answers to its census: a quarter of the
// timeout, at least 1 s, at most 10 s (ranks that wait answer within milliseconds).
double census_grace_seconds();

// Work done between polls while waiting (the MPI census answers); one function, set once.
void set_idle_service(void (*service)());
void run_idle_service();

// Ends a collective that timed out with `message`: prints "moetrain: error: <message>" and ends
// the job (OnTimeout::AbortJob), or throws CollectiveTimeout (OnTimeout::Throw).
[[noreturn]] void fail_collective(const std::string& message);
// A rank whose collective timed out after a peer already asked about that same collective lets
// the peer speak: it waits for the peer to end the job (twice the census grace and 5 s, answering
// the census meanwhile), so a job of many ranks prints one message, not one per rank. Returns
// (to speak itself) if the job is still there; at once with OnTimeout::Throw.
void let_peer_end_job();

// The advice every timeout message ends with.
std::string timeout_advice();

// A stop signal (SIGTERM / SIGINT) that arrived; async-signal-safe (train/stop_signals.cpp calls
// it from its handler). A timeout message says that the stop could not be honoured.
void note_stop_signal(int sig);
int noted_stop_signal();

// "0-3, 6, 9-11": ranks in ascending runs; long lists are cut after `max_items` runs.
std::string rank_list(std::vector<int> ranks, size_t max_items = 16);
// "3 s", "1.5 min": a duration as a person reads it.
std::string duration_text(double seconds);

}  // namespace mt::parallel
