#include "train/zero_shard.h"

#include <algorithm>

namespace mt::train {
namespace {

// `elements` zeros of flat's dtype, on its device.
Tensor zeros_like_of(const Tensor& flat, int64_t elements) {
  return Tensor::zeros({elements}, flat.dtype(), flat.device());
}

}  // namespace

FlatShard FlatShard::of(int64_t length, parallel::Communicator* group, int64_t bucket) {
  FlatShard s;
  s.length = length;
  s.group = group;
  s.bucket = bucket;
  int64_t size = group ? group->size() : 1, rank = group ? group->rank() : 0;
  s.chunk = size > 1 ? (length + size - 1) / size : length;
  s.begin = std::min(length, rank * s.chunk);
  s.end = std::min(length, s.begin + s.chunk);
  return s;
}

void FlatShard::all_gather(Tensor& flat) const {
  if (!partitioned() || chunk == 0) return;
  int64_t size = group->size(), piece = std::min(chunk, std::max<int64_t>(1, bucket / size));
  Tensor all = zeros_like_of(flat, piece * size), mine = zeros_like_of(flat, piece);
  for (int64_t off = 0; off < chunk; off += piece) {  // piece `off` of every rank's chunk
    int64_t len = std::min(piece, chunk - off);
    int64_t have = std::clamp<int64_t>(owned() - off, 0, len);  // this rank's real elements in it
    if (have > 0) mine.narrow(0, have).copy_from(flat.narrow(begin + off, have));
    group->all_gather(mine, all);
    for (int64_t r = 0; r < size; ++r) {
      int64_t at = r * chunk + off, n = std::clamp<int64_t>(length - at, 0, len);
      if (n > 0 && r != group->rank()) flat.narrow(at, n).copy_from(all.narrow(r * piece, n));
    }
  }
}

Tensor FlatShard::gather(const Tensor& mine) const {
  if (!partitioned()) return mine;
  Tensor whole = zeros_like_of(mine, length);
  if (owned() > 0) whole.narrow(begin, owned()).copy_from(mine);
  all_gather(whole);
  return whole;
}

}  // namespace mt::train
