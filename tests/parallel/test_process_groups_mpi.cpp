// The communicators make_process_groups splits from the world hold exactly the ranks the layout
// arithmetic names, in group order. Run under `mpirun -np 2` and `-np 4`.
#include <catch2/catch.hpp>

#include "parallel/process_groups.h"

using namespace mt;
using namespace mt::parallel;

namespace {
// The world ranks of a communicator's members, in its rank order.
std::vector<int> members(Communicator& c) {
  Tensor mine = Tensor::from_vector(std::vector<double>{double(world().rank())}, {1}).to(DType::I64);
  Tensor all = Tensor::empty({c.size()}, DType::I64);
  c.all_gather(mine, all);
  std::vector<int> out;
  for (double v : all.to_double_vector()) out.push_back(int(v));
  return out;
}
}  // namespace

TEST_CASE("process-group communicators match the layout", "[parallel][mpi][groups]") {
  int w = world().size(), r = world().rank();
  for (int tp : {1, 2})
    for (int ep : {1, 2, 4})
      for (bool expert_tp : {false, true}) {
        ParallelLayout l;
        l.world_size = w;
        l.tensor_parallel = tp;
        l.expert_parallel = ep;
        l.expert_tensor_parallel = expert_tp;
        try {
          validate(l);
        } catch (const Error&) {
          continue;  // same decision on every rank
        }
        INFO(l.describe());
        ProcessGroups g = make_process_groups(world(), l);
        REQUIRE(members(*g.tensor_parallel) == tensor_parallel_group(l, r));
        REQUIRE(members(*g.data_parallel) == data_parallel_group(l, r));
        REQUIRE(members(*g.expert_parallel) == expert_parallel_group(l, r));
        REQUIRE(members(*g.expert_data_parallel) == expert_data_parallel_group(l, r));
      }
}
