#include "train/checkpoint_layout.h"

#include <algorithm>
#include <map>

#include "parallel/shards.h"

namespace mt::train {
namespace {

parallel::ShardSpec shard_spec(const Parameter& p) {
  return {p.tags.tp_split_dim, p.tags.tp_blocks};
}

bool contains(const std::vector<int>& ranks, int r) {
  return std::find(ranks.begin(), ranks.end(), r) != ranks.end();
}

// Per MoE layer, the first global expert id held here and how many (the same count on every
// rank of the expert-parallel group: rank r holds [r * count, (r + 1) * count)).
struct LocalExperts {
  int first = 0, count = 0;
};
std::map<int, LocalExperts> local_experts(const ParameterRegistry& params) {
  std::map<int, std::set<int>> ids;
  for (const Parameter& p : params.all())
    if (p.tags.expert) ids[p.tags.expert->layer].insert(p.tags.expert->expert);
  std::map<int, LocalExperts> out;
  for (auto& [layer, set] : ids) out[layer] = {*set.begin(), int(set.size())};
  return out;
}

// The name of the parameter matching expert parameter `p` on expert-parallel rank `ep_rank`:
// its ".experts.<id>." segment carries the other rank's global id.
std::string expert_name_on_rank(const Parameter& p, const LocalExperts& local, int ep_rank) {
  int id = p.tags.expert->expert;
  std::string segment = "experts." + std::to_string(id) + ".";
  size_t at = p.name.find(segment);
  MT_CHECK(at != std::string::npos, "checkpoint: expert parameter '", p.name, "' (expert ", id,
           ") does not name its expert as 'experts.", id, ".'; cannot place it under expert parallelism");
  int other = id - local.first + ep_rank * local.count;
  return p.name.substr(0, at) + "experts." + std::to_string(other) + "." + p.name.substr(at + segment.size());
}

// Every rank's copy of a flat buffer, [size * n], when this rank is in the gathering group;
// else (or for a group of one) the buffer itself.
Tensor gather_flat(const Tensor& flat, parallel::Communicator* group, bool gathers) {
  if (!flat.defined() || !group || group->size() == 1 || !gathers) return flat;
  Tensor out = Tensor::empty({flat.numel() * group->size()}, flat.dtype(), flat.device());
  group->all_gather(flat, out);
  return out;
}

// Parameter p's tensor in chunk `r` of a gathered flat buffer.
Tensor part_of(const Tensor& gathered, const Parameter& p, int64_t flat_size, int r) {
  return gathered.narrow(r * flat_size + p.offset, p.var.value().numel()).reshape(p.var.shape());
}

}  // namespace

CheckpointLayout checkpoint_layout(const parallel::ParallelLayout& layout, const parallel::ProcessGroups& groups,
                                   int rank) {
  CheckpointLayout c;
  if (layout.tensor_parallel > 1) c.tensor_parallel = groups.tensor_parallel.get();
  if (layout.expert_parallel > 1) c.expert_parallel = groups.expert_parallel.get();
  c.gathers_dense = contains(parallel::tensor_parallel_group(layout, rank), 0);
  c.gathers_experts = contains(parallel::expert_parallel_group(layout, rank), 0);
  c.writer = rank == 0;
  return c;
}

std::vector<NamedTensor> gather_global_tensors(const ParameterRegistry& params, const CheckpointLayout& layout,
                                               const std::string& prefix,
                                               const std::function<Tensor(ParamGroup)>& flat) {
  MT_CHECK(params.packed(), "checkpoint: the parameter registry must be packed");
  Tensor dense = flat(ParamGroup::Dense), experts = flat(ParamGroup::Expert);
  Tensor all_dense = gather_flat(dense, layout.tensor_parallel, layout.gathers_dense);
  Tensor all_experts = gather_flat(experts, layout.expert_parallel, layout.gathers_experts);
  std::vector<NamedTensor> out;
  if (!layout.writer) return out;
  std::map<int, LocalExperts> local = local_experts(params);
  for (const Parameter& p : params.all()) {
    if (p.group() == ParamGroup::Expert) {
      for (int r = 0; r < layout.ep_size(); ++r)
        out.push_back({prefix + expert_name_on_rank(p, local.at(p.tags.expert->layer), r),
                       part_of(all_experts, p, experts.numel(), r).to(Device::cpu())});
    } else if (p.tags.tp_split_dim >= 0 && layout.tp_size() > 1) {
      std::vector<Tensor> shards;
      for (int r = 0; r < layout.tp_size(); ++r) shards.push_back(part_of(all_dense, p, dense.numel(), r));
      out.push_back({prefix + p.name, parallel::merge_shards(shards, shard_spec(p)).to(Device::cpu())});
    } else {
      out.push_back({prefix + p.name, part_of(all_dense, p, dense.numel(), 0).to(Device::cpu())});
    }
  }
  return out;
}

std::set<std::string> global_tensor_names(const ParameterRegistry& params, const CheckpointLayout& layout,
                                          const std::string& prefix) {
  std::map<int, LocalExperts> local = local_experts(params);
  std::set<std::string> names;
  for (const Parameter& p : params.all()) {
    if (!p.tags.expert) {
      names.insert(prefix + p.name);
      continue;
    }
    for (int r = 0; r < layout.ep_size(); ++r)
      names.insert(prefix + expert_name_on_rank(p, local.at(p.tags.expert->layer), r));
  }
  return names;
}

Shape global_shape(const Parameter& p, const CheckpointLayout& layout) {
  Shape shape = p.var.shape();
  if (p.tags.tp_split_dim >= 0 && !p.tags.expert) shape[size_t(p.tags.tp_split_dim)] *= layout.tp_size();
  return shape;
}

Tensor local_part(const Parameter& p, const Tensor& global, const CheckpointLayout& layout) {
  if (p.tags.tp_split_dim < 0 || p.tags.expert || layout.tp_size() == 1) return global;
  return parallel::shard_of(global, shard_spec(p), layout.tp_rank(), layout.tp_size());
}

}  // namespace mt::train
