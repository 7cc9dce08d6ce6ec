// ZeRO's partition of a flat buffer (train/zero_shard.h): equal chunks in rank order, the last
// ones short or empty, the whole buffer without a group. (The collectives run under mpirun:
// parallel.train_*_zero1_matches_single and parallel.resume_across_zero_stages.)
#include <catch2/catch.hpp>

#include "train/zero_shard.h"

using namespace mt;
using mt::train::FlatShard;

namespace {

// A group member of a given rank and size whose collectives are never called here.
class FakeGroup final : public parallel::Communicator {
 public:
  FakeGroup(int rank, int size) : rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "fake"; }
  void all_reduce(Tensor&, parallel::ReduceKind) override { fail(); }
  void all_gather(const Tensor&, Tensor&) override { fail(); }
  void reduce_scatter(const Tensor&, Tensor&, parallel::ReduceKind) override { fail(); }
  void reduce(Tensor&, parallel::ReduceKind, int) override { fail(); }
  void broadcast(Tensor&, int) override { fail(); }
  void all_to_all(const Tensor&, Tensor&) override { fail(); }
  void all_to_all_v(const Tensor&, const std::vector<int64_t>&, Tensor&, const std::vector<int64_t>&) override {
    fail();
  }
  void barrier() override { fail(); }
  std::unique_ptr<Communicator> split(int, int) override {
    fail();
    return nullptr;
  }

 private:
  static void fail() { FAIL("no collective expected"); }
  int rank_, size_;
};

}  // namespace

TEST_CASE("ZeRO partitions a flat buffer into equal chunks in rank order", "[train][zero]") {
  struct Want {
    int64_t begin, end;
  };
  // 10 elements over 4 ranks: chunks of 3, the last rank holds 1
  std::vector<Want> ten = {{0, 3}, {3, 6}, {6, 9}, {9, 10}};
  // 5 elements over 4 ranks: chunks of 2, the last rank holds none
  std::vector<Want> five = {{0, 2}, {2, 4}, {4, 5}, {5, 5}};
  for (auto [length, wants] : {std::pair{int64_t(10), ten}, std::pair{int64_t(5), five}}) {
    int64_t covered = 0;
    for (int r = 0; r < 4; ++r) {
      FakeGroup g(r, 4);
      FlatShard s = FlatShard::of(length, &g);
      INFO("length " << length << ", rank " << r);
      CHECK(s.partitioned());
      CHECK(s.chunk == (length + 3) / 4);
      CHECK(s.begin == wants[size_t(r)].begin);
      CHECK(s.end == wants[size_t(r)].end);
      covered += s.owned();
    }
    CHECK(covered == length);
  }
  FakeGroup alone(0, 1);
  for (parallel::Communicator* g : {static_cast<parallel::Communicator*>(nullptr),
                                    static_cast<parallel::Communicator*>(&alone)}) {
    FlatShard s = FlatShard::of(7, g);
    CHECK_FALSE(s.partitioned());
    CHECK(s.begin == 0);
    CHECK(s.end == 7);
    // one rank: gathering is the identity, nothing is communicated
    Tensor mine = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, 7}, {7});
    CHECK(s.gather(mine).to_double_vector() == mine.to_double_vector());
  }
}
