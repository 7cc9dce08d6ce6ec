// The watchdog's pieces that need no MPI: rank lists, durations, the timeout setting, and a wait
// that completes or times out.
#include <catch2/catch.hpp>
#include <chrono>

#include "parallel/watchdog.h"

using namespace mt;
using namespace mt::parallel;

TEST_CASE("rank lists and durations read as a person writes them", "[parallel][watchdog]") {
  CHECK(rank_list({3, 0, 1, 2, 6, 9, 10, 11}) == "0-3, 6, 9-11");
  CHECK(rank_list({5}) == "5");
  CHECK(rank_list({0, 2, 4, 6}, 2) == "0, 2, ... (4 ranks)");
  CHECK(duration_text(3) == "3 s");
  CHECK(duration_text(600) == "10 min");
  CHECK(duration_text(90 * 60) == "90 min");
}

TEST_CASE("a wait completes, or times out after the timeout", "[parallel][watchdog]") {
  int polls = 0;
  CHECK(wait_for_collective([&] { return ++polls == 3; }));
  CHECK_THROWS_WITH(set_collective_timeout(0), Catch::Contains("must be positive"));
  set_collective_timeout(0.05);
  auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(wait_for_collective([] { return false; }));
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(50));
  set_collective_timeout(600);
  set_on_timeout(OnTimeout::Throw);
  CHECK_THROWS_AS(fail_collective("all_reduce #1 stuck"), CollectiveTimeout);
  set_on_timeout(OnTimeout::AbortJob);
}
