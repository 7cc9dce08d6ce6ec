#include "parallel/shards.h"

#include <cstring>

namespace mt::parallel {
namespace {

// The full tensor along `dim` as [outer, blocks, parts, chunk, inner] (in elements).
struct SplitView {
  int64_t outer = 1, blocks = 1, parts = 1, chunk = 0, inner = 1;
};

SplitView split_view(const Shape& full_shape, ShardSpec spec, int parts, const char* what) {
  MT_CHECK(spec.dim >= 0 && spec.dim < int(full_shape.size()), what, ": split dimension ", spec.dim,
           " out of range for shape ", shape_str(full_shape));
  SplitView v;
  for (int d = 0; d < spec.dim; ++d) v.outer *= full_shape[size_t(d)];
  for (size_t d = size_t(spec.dim) + 1; d < full_shape.size(); ++d) v.inner *= full_shape[d];
  int64_t n = full_shape[size_t(spec.dim)];
  MT_CHECK(spec.blocks >= 1 && parts >= 1 && n % (int64_t(spec.blocks) * parts) == 0, what, ": dimension ", spec.dim,
           " of ", shape_str(full_shape), " (", n, ") does not split into ", spec.blocks, " blocks x ", parts,
           " ranks");
  v.blocks = spec.blocks;
  v.parts = parts;
  v.chunk = n / (int64_t(spec.blocks) * parts);
  return v;
}

// Copies chunk `index` of every block between the full tensor and one shard (to_shard: full ->
// shard; else shard -> full).
void copy_chunks(const SplitView& v, int index, size_t elem, char* full, char* shard, bool to_shard) {
  size_t run = size_t(v.chunk * v.inner) * elem;
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t b = 0; b < v.blocks; ++b) {
      char* f = full + size_t(((o * v.blocks + b) * v.parts + index) * v.chunk * v.inner) * elem;
      char* s = shard + size_t((o * v.blocks + b) * v.chunk * v.inner) * elem;
      if (to_shard)
        std::memcpy(s, f, run);
      else
        std::memcpy(f, s, run);
    }
}

}  // namespace

Tensor shard_of(const Tensor& full, ShardSpec spec, int index, int parts) {
  if (spec.dim < 0 || parts == 1) return full.clone();
  SplitView v = split_view(full.shape(), spec, parts, "shard_of");
  MT_CHECK(index >= 0 && index < parts, "shard_of: shard ", index, " of ", parts);
  Tensor cpu = full.to(Device::cpu());
  Shape shape = full.shape();
  shape[size_t(spec.dim)] = v.blocks * v.chunk;
  Tensor out = Tensor::empty(shape, full.dtype());
  copy_chunks(v, index, dtype_size(full.dtype()), static_cast<char*>(cpu.raw()), static_cast<char*>(out.raw()), true);
  return out.to(full.device());
}

Tensor merge_shards(const std::vector<Tensor>& shards, ShardSpec spec) {
  MT_CHECK(!shards.empty(), "merge_shards: no shards");
  if (spec.dim < 0 || shards.size() == 1) return shards[0].clone();
  Shape shape = shards[0].shape();
  MT_CHECK(spec.dim < int(shape.size()), "merge_shards: split dimension ", spec.dim, " out of range for ",
           shards[0].str());
  shape[size_t(spec.dim)] *= int64_t(shards.size());
  SplitView v = split_view(shape, spec, int(shards.size()), "merge_shards");
  Tensor out = Tensor::empty(shape, shards[0].dtype());
  for (size_t i = 0; i < shards.size(); ++i) {
    MT_CHECK(shards[i].shape() == shards[0].shape() && shards[i].dtype() == shards[0].dtype(), "merge_shards: shard ",
             i, " is ", shards[i].str(), " but shard 0 is ", shards[0].str());
    Tensor cpu = shards[i].to(Device::cpu());
    copy_chunks(v, int(i), dtype_size(out.dtype()), static_cast<char*>(out.raw()), static_cast<char*>(cpu.raw()),
                false);
  }
  return out.to(shards[0].device());
}

}  // namespace mt::parallel
