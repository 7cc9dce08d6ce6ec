// The collective watchdog under mpirun (-np 2 and -np 4): a collective that a rank does not join
// fails after the timeout with a message naming the collective, its group and that rank; a rank
// waiting in another collective is named with where it waits. Errors are thrown here (tests) where
// a job ends; afterwards the late rank joins, so every collective completes and the job ends
// cleanly.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "parallel/communicator.h"
#include "parallel/watchdog.h"

using namespace mt;
using namespace mt::parallel;

namespace {

// A short timeout, thrown instead of ending the job, for the lifetime of the object.
struct QuickTimeouts {
  explicit QuickTimeouts(double seconds) {
    set_collective_timeout(seconds);
    set_on_timeout(OnTimeout::Throw);
  }
  ~QuickTimeouts() {
    set_collective_timeout(600);
    set_on_timeout(OnTimeout::AbortJob);
  }
};

// A fresh communicator over the whole world (its collectives are numbered from 1), named `name`.
std::unique_ptr<Communicator> fresh_group(const char* name) {
  std::unique_ptr<Communicator> g = world().split(0, world().rank());
  g->set_group_name(name);
  return g;
}

// The message of the CollectiveTimeout that `collective` throws ("" when it completes).
template <class F>
std::string timeout_message(F collective) {
  try {
    collective();
  } catch (const CollectiveTimeout& e) {
    return e.what();
  }
  return "";
}

// "0-3": the whole world as the messages list it.
std::string all_ranks() {
  return std::string("0-") + std::to_string(world().size() - 1);
}

}  // namespace

TEST_CASE("a collective that a rank does not join times out naming that rank", "[parallel][mpi][watchdog]") {
  Communicator& w = world();
  std::unique_ptr<Communicator> g = fresh_group("test");
  Tensor t = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3});
  {
    QuickTimeouts quick(0.5);
    if (w.rank() == 1) {  // busy elsewhere, not in a collective: it does not answer the census
      std::this_thread::sleep_for(std::chrono::duration<double>(0.5 + census_grace_seconds() + 3));
    } else {
      std::string m = timeout_message([&] { g->all_reduce(t, ReduceKind::Sum); });
      INFO(m);
      CHECK_THAT(m, Catch::StartsWith(std::string("all_reduce #1 on the test group (world ranks ") + all_ranks() +
                                      ") has waited 0.5 s on world rank " + std::to_string(w.rank())));
      CHECK_THAT(m, Catch::Contains(": world rank 1 ") && Catch::Contains("did not arrive and does not answer"));
      CHECK_THAT(m, Catch::Contains("raise distributed_timeout_minutes") && Catch::EndsWith("Ending the job."));
    }
  }
  if (w.rank() == 1) g->all_reduce(t, ReduceKind::Sum);  // the late rank completes everyone's all_reduce
  w.barrier();
}

TEST_CASE("a rank waiting in another collective is named with where it waits", "[parallel][mpi][watchdog]") {
  Communicator& w = world();
  std::unique_ptr<Communicator> first = fresh_group("first"), second = fresh_group("second");
  Tensor t = Tensor::from_vector(std::vector<double>{1}, {1});
  {
    // Rank 1 waits in a barrier of the second group and times out first; the others wait in an
    // all_reduce of the first group (with a longer timeout) and answer its census.
    QuickTimeouts quick(w.rank() == 1 ? 0.5 : 60);
    if (w.rank() == 1) {
      std::string m = timeout_message([&] { second->barrier(); });
      INFO(m);
      CHECK_THAT(m, Catch::StartsWith(std::string("barrier #1 on the second group (world ranks ") + all_ranks() + ")"));
      std::string others =
          w.size() == 2 ? "world rank 0" : std::string("world ranks 0, 2-") + std::to_string(w.size() - 1);
      CHECK_THAT(m, Catch::Contains(std::string(": ") + others +
                                    " did not arrive: waiting in all_reduce #1 on the first group"));
      first->all_reduce(t, ReduceKind::Sum);  // completes the others' all_reduce
    } else {
      first->all_reduce(t, ReduceKind::Sum);
      second->barrier();  // completes rank 1's barrier
    }
  }
  w.barrier();
}
