#include "train/zero_shard.h"

#include <algorithm>

#include "runtime/ops.h"

namespace mt::train {
namespace {

// [size * chunk] elements shaped like flat's dtype and device, the tail past `length` zero.
Tensor padded_like(const Tensor& flat, int64_t elements) {
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
  Tensor all = padded_like(flat, piece * size), mine = padded_like(flat, piece);
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
  Tensor all = padded_like(mine, chunk * group->size());
  Tensor padded = padded_like(mine, chunk);
  if (owned() > 0) padded.narrow(0, owned()).copy_from(mine);
  group->all_gather(padded, all);
  return all.narrow(0, length).clone();
}

void FlatShard::reduce_scatter(const Tensor& flat, Tensor& mine, double scale) const {
  if (!partitioned()) {
    mine.copy_from(flat);
    if (scale != 1.0) ops::scale_(mine, scale);
    return;
  }
  Tensor all = padded_like(flat, chunk * group->size());
  all.narrow(0, length).copy_from(flat);
  Tensor out = Tensor::empty({chunk}, flat.dtype(), flat.device());
  group->reduce_scatter(all, out, parallel::ReduceKind::Sum);
  if (owned() > 0) mine.copy_from(out.narrow(0, owned()));
  if (scale != 1.0) ops::scale_(mine, scale);
}

}  // namespace mt::train
