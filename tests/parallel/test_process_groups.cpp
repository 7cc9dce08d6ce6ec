// Process-group membership (no MPI needed): the examples of DeepSpeed's
// deepspeed/utils/groups.py docstrings (docs/parallel.md) verbatim, and the
// invariants every layout must keep (groups partition the world; a rank's expert-parallel and
// expert-data-parallel groups meet only in itself and together cover its stage or its DP group).
#include <algorithm>
#include <catch2/catch.hpp>
#include <set>

#include "parallel/process_groups.h"
#include "parallel/self_communicator.h"

using namespace mt::parallel;
using Group = std::vector<int>;

namespace {
ParallelLayout layout(int world, int tp, int pp, int ep, bool expert_tp = false, bool d_before_e = false) {
  ParallelLayout l;
  l.world_size = world;
  l.tensor_parallel = tp;
  l.pipeline_parallel = pp;
  l.expert_parallel = ep;
  l.expert_tensor_parallel = expert_tp;
  l.data_before_expert = d_before_e;
  return l;
}

using GroupOf = Group (*)(const ParallelLayout&, int);

// Every rank is in its own group, and all members of a group agree on it: the groups partition
// the world into blocks of `size`.
void require_partition(const ParallelLayout& l, GroupOf group_of, int size) {
  for (int r = 0; r < l.world_size; ++r) {
    Group g = group_of(l, r);
    REQUIRE(int(g.size()) == size);
    REQUIRE(std::count(g.begin(), g.end(), r) == 1);
    for (int member : g) REQUIRE(group_of(l, member) == g);
  }
}
}  // namespace

TEST_CASE("spec example: 16 ranks, ep 2, E + D layout", "[parallel][groups]") {
  ParallelLayout l = layout(16, 1, 1, 2);
  validate(l);
  REQUIRE(expert_parallel_group(l, 0) == Group{0, 1});
  REQUIRE(expert_parallel_group(l, 7) == Group{6, 7});
  REQUIRE(expert_data_parallel_group(l, 0) == Group{0, 2, 4, 6, 8, 10, 12, 14});
  REQUIRE(expert_data_parallel_group(l, 9) == Group{1, 3, 5, 7, 9, 11, 13, 15});
  REQUIRE(data_parallel_group(l, 5).size() == 16);
  REQUIRE(l.expert_data_parallel() == 8);
}

TEST_CASE("spec example: 16 ranks, tp 2, ep 4, expert tensor parallelism", "[parallel][groups]") {
  ParallelLayout l = layout(16, 2, 1, 4, true);
  validate(l);
  REQUIRE(data_parallel_group(l, 0) == Group{0, 2, 4, 6, 8, 10, 12, 14});
  REQUIRE(data_parallel_group(l, 3) == Group{1, 3, 5, 7, 9, 11, 13, 15});
  REQUIRE(expert_parallel_group(l, 4) == Group{0, 2, 4, 6});
  REQUIRE(expert_parallel_group(l, 12) == Group{8, 10, 12, 14});
  REQUIRE(expert_parallel_group(l, 3) == Group{1, 3, 5, 7});
  REQUIRE(expert_parallel_group(l, 15) == Group{9, 11, 13, 15});
  const std::vector<Group> edp = {{0, 8}, {2, 10}, {4, 12}, {6, 14}, {1, 9}, {3, 11}, {5, 13}, {7, 15}};
  for (const Group& g : edp)
    for (int r : g) REQUIRE(expert_data_parallel_group(l, r) == g);
  REQUIRE(tensor_parallel_group(l, 5) == Group{4, 5});
}

TEST_CASE("D + E layout: contiguous expert replicas, strided expert groups", "[parallel][groups]") {
  ParallelLayout l = layout(8, 1, 1, 2, false, true);
  validate(l);
  REQUIRE(expert_data_parallel_group(l, 5) == Group{4, 5, 6, 7});
  REQUIRE(expert_parallel_group(l, 5) == Group{1, 5});
}

TEST_CASE("pipeline stages keep their groups inside the stage", "[parallel][groups]") {
  ParallelLayout l = layout(16, 2, 2, 2);  // Q = 8 ranks per stage, D = 4
  validate(l);
  REQUIRE(data_parallel_group(l, 9) == Group{9, 11, 13, 15});
  REQUIRE(expert_data_parallel_group(l, 9) == Group{9, 11, 13, 15});
  REQUIRE(expert_parallel_group(l, 9) == Group{8, 9});
}

TEST_CASE("every valid layout partitions the world consistently", "[parallel][groups]") {
  int checked = 0;
  for (int world : {1, 2, 4, 6, 8, 12, 16})
    for (int tp : {1, 2, 4})
      for (int pp : {1, 2})
        for (int ep : {1, 2, 4, 8})
          for (int mode = 0; mode < 3; ++mode) {
            ParallelLayout l = layout(world, tp, pp, ep, mode == 2, mode == 1);
            try {
              validate(l);
            } catch (const mt::Error&) {
              continue;
            }
            ++checked;
            require_partition(l, tensor_parallel_group, tp);
            require_partition(l, data_parallel_group, l.data_parallel());
            require_partition(l, expert_parallel_group, ep);
            require_partition(l, expert_data_parallel_group, l.expert_data_parallel());
            for (int r = 0; r < world; ++r) {
              Group e = expert_parallel_group(l, r), d = expert_data_parallel_group(l, r);
              std::set<int> both;
              for (int x : e)
                if (std::count(d.begin(), d.end(), x)) both.insert(x);
              REQUIRE(both == std::set<int>{r});
              // Expert TP: EP x EDP covers r's data-parallel group; otherwise r's whole stage.
              std::set<int> covered;
              for (int x : e)
                for (int y : expert_data_parallel_group(l, x)) covered.insert(y);
              Group dp = data_parallel_group(l, r);
              size_t want = l.expert_tensor_parallel ? dp.size() : size_t(l.ranks_per_stage());
              REQUIRE(covered.size() == want);
            }
          }
  REQUIRE(checked > 40);
}

TEST_CASE("layouts that do not fit are refused with the setting to change", "[parallel][groups]") {
  REQUIRE_THROWS_WITH(validate(layout(6, 4, 1, 1)), Catch::Contains("tensor_model_parallel_size (4)"));
  REQUIRE_THROWS_WITH(validate(layout(6, 1, 1, 4)), Catch::Contains("moe_expert_parallel_size (4)"));
  REQUIRE_THROWS_WITH(validate(layout(8, 2, 1, 8, true)), Catch::Contains("data-parallel size (4"));
  REQUIRE_THROWS_WITH(tensor_parallel_group(layout(4, 1, 1, 1), 4), Catch::Contains("outside"));
}

TEST_CASE("a process started without a launcher is a one-rank world that never initialises MPI", "[groups][self]") {
  if (mt::parallel::launched_by_mpi()) return;  // (under mpirun the world is MPI's)
  Communicator& w = world();
  REQUIRE(w.name() == "self");
  REQUIRE(w.size() == 1);
  mt::Tensor t = mt::Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}),
             out = mt::Tensor::zeros({3}, mt::DType::F64);
  w.all_reduce(t, ReduceKind::Avg);
  w.all_gather(t, out);
  REQUIRE(out.to_double_vector() == std::vector<double>{1, 2, 3});
  mt::Tensor v = mt::Tensor::zeros({3}, mt::DType::F64);
  w.all_to_all_v(t, {3}, v, {3});
  REQUIRE(v.to_double_vector() == std::vector<double>{1, 2, 3});
  REQUIRE(w.split(0, 0)->size() == 1);
  ProcessGroups g = make_process_groups(w, layout(1, 1, 1, 1));
  REQUIRE(g.data_parallel->size() == 1);
}
