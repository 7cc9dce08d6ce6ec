// Group membership by rank arithmetic (see process_groups.h) and the communicators built from it.
#include "parallel/process_groups.h"

#include <algorithm>
#include <sstream>

#include "runtime/error.h"

namespace mt::parallel {

namespace {

// Where a rank sits: its pipeline stage's first rank and its index inside the stage.
struct StagePosition {
  int stage_start;
  int local;
};
StagePosition stage_position(const ParallelLayout& l, int rank) {
  int q = l.ranks_per_stage();
  return {rank / q * q, rank % q};
}

// {first + i * stride : i < count}
std::vector<int> strided(int first, int stride, int count) {
  std::vector<int> g(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) g[size_t(i)] = first + i * stride;
  return g;
}

// Index of `rank` inside `group` (a member).
int position_of(const std::vector<int>& group, int rank) {
  return int(std::find(group.begin(), group.end(), rank) - group.begin());
}

void check_rank(const ParallelLayout& l, int rank) {
  MT_CHECK(rank >= 0 && rank < l.world_size, "process groups: rank ", rank, " is outside a world of ", l.world_size,
           " ranks");
}

}  // namespace

int ParallelLayout::expert_data_parallel() const {
  return expert_tensor_parallel ? data_parallel() / expert_parallel : ranks_per_stage() / expert_parallel;
}

std::string ParallelLayout::describe() const {
  std::ostringstream os;
  os << "world " << world_size << " = tp " << tensor_parallel << " x dp " << data_parallel() << " x pp "
     << pipeline_parallel << ", ep " << expert_parallel << " (";
  if (expert_tensor_parallel)
    os << "experts tensor-parallel";
  else
    os << (data_before_expert ? "D + E" : "E + D");
  os << ", expert replicas " << expert_data_parallel() << ")";
  return os.str();
}

void validate(const ParallelLayout& l) {
  MT_CHECK(l.world_size >= 1, "process groups: world size must be at least 1, got ", l.world_size);
  MT_CHECK(l.tensor_parallel >= 1 && l.pipeline_parallel >= 1 && l.expert_parallel >= 1,
           "process groups: tensor_model_parallel_size, pipeline_model_parallel_size and "
           "moe_expert_parallel_size must be at least 1 (got ",
           l.tensor_parallel, ", ", l.pipeline_parallel, ", ", l.expert_parallel, ")");
  int model_parallel = l.tensor_parallel * l.pipeline_parallel;
  MT_CHECK(l.world_size % model_parallel == 0, "process groups: the ", l.world_size,
           " ranks do not divide into tensor_model_parallel_size (", l.tensor_parallel,
           ") x pipeline_model_parallel_size (", l.pipeline_parallel, "); start a multiple of ", model_parallel,
           " ranks or change these sizes");
  if (l.expert_tensor_parallel) {
    MT_CHECK(l.data_parallel() % l.expert_parallel == 0, "process groups: with expert tensor parallelism, ",
             "moe_expert_parallel_size (", l.expert_parallel, ") must divide the data-parallel size (",
             l.data_parallel(), " = ", l.world_size, " ranks / (tp ", l.tensor_parallel, " x pp ", l.pipeline_parallel,
             "))");
    MT_CHECK(!l.data_before_expert,
             "process groups: the D + E expert layout cannot be combined with "
             "expert tensor parallelism");
  } else {
    MT_CHECK(l.ranks_per_stage() % l.expert_parallel == 0, "process groups: moe_expert_parallel_size (",
             l.expert_parallel, ") must divide the ranks of a pipeline stage (", l.ranks_per_stage(), " = ",
             l.world_size, " ranks / pp ", l.pipeline_parallel, ")");
  }
}

std::vector<int> tensor_parallel_group(const ParallelLayout& l, int rank) {
  check_rank(l, rank);
  return strided(rank / l.tensor_parallel * l.tensor_parallel, 1, l.tensor_parallel);
}

std::vector<int> data_parallel_group(const ParallelLayout& l, int rank) {
  check_rank(l, rank);
  StagePosition p = stage_position(l, rank);
  return strided(p.stage_start + p.local % l.tensor_parallel, l.tensor_parallel, l.data_parallel());
}

std::vector<int> expert_parallel_group(const ParallelLayout& l, int rank) {
  check_rank(l, rank);
  int ep = l.expert_parallel;
  StagePosition p = stage_position(l, rank);
  if (l.expert_tensor_parallel) {  // chunk c of the data-parallel group
    std::vector<int> dp = data_parallel_group(l, rank);
    int chunk = position_of(dp, rank) / ep;
    return {dp.begin() + chunk * ep, dp.begin() + (chunk + 1) * ep};
  }
  if (l.data_before_expert) {
    int q = l.ranks_per_stage() / ep;
    return strided(p.stage_start + p.local % q, q, ep);
  }
  return strided(rank / ep * ep, 1, ep);
}

std::vector<int> expert_data_parallel_group(const ParallelLayout& l, int rank) {
  check_rank(l, rank);
  int ep = l.expert_parallel;
  StagePosition p = stage_position(l, rank);
  if (l.expert_tensor_parallel) {  // the same position m in every chunk of the data-parallel group
    std::vector<int> dp = data_parallel_group(l, rank);
    int m = position_of(dp, rank) % ep;
    std::vector<int> g;
    for (int k = m; k < int(dp.size()); k += ep) g.push_back(dp[size_t(k)]);
    return g;
  }
  int q = l.ranks_per_stage() / ep;
  if (l.data_before_expert) return strided(p.stage_start + p.local / q * q, 1, q);
  return strided(p.stage_start + p.local % ep, ep, q);
}

ProcessGroups make_process_groups(Communicator& world, ParallelLayout layout) {
  layout.world_size = world.size();
  validate(layout);
  int r = world.rank();
  // Color = the group's first (smallest) member, key = the position inside the group: every
  // member computes the same color, and ranks inside the new communicator follow the group order.
  auto split_by = [&](const std::vector<int>& group, const char* name) {
    std::unique_ptr<Communicator> c = world.split(*std::min_element(group.begin(), group.end()), position_of(group, r));
    c->set_group_name(name);  // named in the messages of a collective that times out
    return c;
  };
  ProcessGroups g;
  g.layout = layout;
  g.tensor_parallel = split_by(tensor_parallel_group(layout, r), "tensor parallel");
  g.data_parallel = split_by(data_parallel_group(layout, r), "data parallel");
  g.expert_parallel = split_by(expert_parallel_group(layout, r), "expert parallel");
  g.expert_data_parallel = split_by(expert_data_parallel_group(layout, r), "expert data parallel");
  return g;
}

}  // namespace mt::parallel
